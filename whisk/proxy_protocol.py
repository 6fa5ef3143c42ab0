"""PROXY protocol version 1 lines (HAProxy's), as far as whisk speaks it: the invoker's relay begins a connection to a
controller's actions port with one, naming the container whose call it carries (containers/api_relay.py), and the
port reads it (api/actions_port.py). A line is `PROXY TCP4 <source> <destination> <sport> <dport>\\r\\n`, at most 107
bytes, or `PROXY UNKNOWN ...\\r\\n` for a connection of no known source."""

from __future__ import annotations

import ipaddress

PREFIX = b"PROXY "
MAX_LINE = 107                  # the protocol's longest line, CRLF included


def line(source: str, port: int) -> bytes:
    """The line naming `source` (an IPv4 address), to the upstream's `port`. The destination's address is not known
    where the line is written (a name, resolved by the connection), and not read."""
    return f"PROXY TCP4 {source} 0.0.0.0 0 {port}\r\n".encode()


def source_of(text: bytes) -> str | None:
    """The source address a line (without its CRLF) names; "" for `PROXY UNKNOWN`; None for what is no such line."""
    fields = text.split(b" ")
    if fields[:2] == [b"PROXY", b"UNKNOWN"]:
        return ""
    if len(fields) != 6 or fields[1] != b"TCP4":
        return None
    try:
        return str(ipaddress.IPv4Address(fields[2].decode("ascii")))
    except (UnicodeDecodeError, ValueError):
        return None
