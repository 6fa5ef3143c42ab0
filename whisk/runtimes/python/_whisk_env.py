"""Per-activation environment variables (`__OW_ACTIVATION_ID`, `__OW_DEADLINE`, ...) without glibc's setenv leak.

glibc's setenv(3), which os.environ assignment calls, keeps every distinct "NAME=value" string it was ever given
(a getenv caller may still hold the old pointer). A fresh activation id, transaction id and deadline on every /run
so leak about 265 bytes an activation, and a busy warm container grows without bound (measured: 26 MB per 100,000
runs). Here each variable has one C buffer, rewritten in place and handed to putenv(3), which keeps the pointer
itself rather than a copy; os.environ's mapping is updated beside it, without a second setenv. Child processes of
the action see the values as before. Where ctypes is missing, os.environ's own assignment is used.

A sibling of proxy.py, stdlib only, named so that no action's own module is likely to shadow it.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

# putenv(3) through ctypes: takes the address of a "NAME=value" buffer; None where ctypes cannot reach it.
_putenv: Callable[[int], int] | None
try:
    import ctypes

    _c_putenv = ctypes.CDLL(None).putenv
    _c_putenv.argtypes = [ctypes.c_void_p]
    _c_putenv.restype = ctypes.c_int
    _putenv = _c_putenv
except (ImportError, OSError, AttributeError):     # no ctypes (or no libffi) in this Python
    _putenv = None

_buffers: dict[str, ctypes.Array[ctypes.c_char]] = {}


# key -> (its os.environ key, the value it was given, os.environ's bytes for it): most variables keep their value from
# one activation to the next (namespace, action name, API host and key), and rewriting one costs about a microsecond.
_written: dict[str, tuple[object, str, object]] = {}


def set_variable(key: str, value: str) -> None:
    known = _written.get(key)
    if known is not None and known[1] == value and os.environ._data.get(known[0]) is known[2]:  # type: ignore[attr-defined]
        return                      # unchanged, and not replaced or removed by the action since
    if _putenv is None or not key or "=" in key or "\0" in key or "\0" in value:
        os.environ[key] = value
        return
    entry = f"{key}={value}".encode(sys.getfilesystemencoding(), "surrogateescape")
    buffer = _buffers.get(key)
    if buffer is None or ctypes.sizeof(buffer) <= len(entry):
        buffer = ctypes.create_string_buffer(max(64, 2 * len(entry)))
        ctypes.memmove(buffer, entry, len(entry))
        _putenv(ctypes.addressof(buffer))
        _buffers[key] = buffer      # only now may a smaller buffer before it be freed: environ points here
    else:
        ctypes.memmove(buffer, entry + b"\0", len(entry) + 1)
        _putenv(ctypes.addressof(buffer))   # again, in case the action replaced or removed the variable
    encoded_key, encoded = os.environ.encodekey(key), os.environ.encodevalue(value)
    os.environ._data[encoded_key] = encoded  # type: ignore[attr-defined]
    _written[key] = (encoded_key, value, encoded)
