"""A request path's segments as Pekko renders them: percent-encoded but for RFC 3986's pchar characters. A web
action sees the rest of its path in that form (`__ow_path`), and an API route is matched in it, so that an encoded
"/" or "?" stays inside its segment and "caf%C3%A9" and "café" are the same path."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

PCHAR_SAFE = "!$&'()*+,;=:@-._~"


def path_segment(raw: str) -> str:
    """One segment, as sent (percent-encoded or not), as Pekko renders it."""
    return quote(unquote(raw), safe=PCHAR_SAFE)


def rendered(path: str, *, templates: bool = False) -> str:
    """A path whose segments are each rendered; with `templates`, the `{name}` parts of an API route's path (its
    parameters) are kept as they are."""
    if not templates:
        return "/".join(path_segment(part) for part in path.split("/"))
    return "".join(piece if piece == "/" or piece.startswith("{") else path_segment(piece)
                   for piece in _TEMPLATES.split(path))


_TEMPLATES = re.compile(r"(\{[^}/]+\}|/)")
