"""A request path's segments as Pekko renders them: percent-encoded but for RFC 3986's pchar characters. A web
action sees the rest of its path in that form (`__ow_path`), and an API route is matched in it, so that an encoded
"/" or "?" stays inside its segment and "caf%C3%A9" and "café" are the same path. A raw web action's query
(`__ow_query`) is Pekko's parsed query rendered again (`rendered_query`)."""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

PCHAR_SAFE = "!$&'()*+,;=:@-._~"
# Pekko's `strict-query-char-np` beyond the letters, digits and "-._~" that quote keeps anyway: the sub-delims but
# "&=;+", and "@:/?"
QUERY_SAFE = "!$'()*,@:/?"


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


def rendered_query(raw: str) -> str:
    """A query string as OpenWhisk hands it to a raw web action: parsed as Pekko parses one (pairs split at "&",
    a key at its first "=", %XX as UTF-8, "+" a space), then rendered as `Uri.Query.toString` does (a space as
    "+", other characters outside QUERY_SAFE percent-encoded; a key without "=" is written without one)."""
    if not raw:
        return ""
    pairs = []
    for pair in raw.split("&"):
        key, equals, value = pair.partition("=")
        pairs.append(_query_part(key) + (equals and "=" + _query_part(value)))
    return "&".join(pairs)


def _query_part(raw: str) -> str:
    return quote_plus(unquote_plus(raw, errors="replace"), safe=QUERY_SAFE)
