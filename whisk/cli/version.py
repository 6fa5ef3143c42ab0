"""The client's version, from the installed distribution's metadata (works however `whisk` was imported)."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("whisk")
except metadata.PackageNotFoundError:      # running from a source tree that was never installed
    VERSION = "0.0.0"
