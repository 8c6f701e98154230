"""The one place a redirect target taken from a request is checked (``next``, Referer).

A target is accepted only as a path on this site. Browsers are lenient about what a
``Location`` means: they drop tabs and newlines (``/\\t/evil.example`` becomes
``//evil.example``), read a backslash as a slash and follow a scheme or a host. So a
target is refused when it, or its path percent-decoded (repeatedly), holds any control
or whitespace character or a backslash, names a scheme or a host, or starts with ``//``.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote, urlsplit

MAX_TARGET = 2000
# Printable ASCII a Location may carry as is; anything else is percent-encoded.
_KEEP = "/?=&%#:@!$'()*+,;~-._"


def _unsafe_char(text: str) -> bool:
    return any(ch == "\\" or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
               for ch in text)


def _decoded(text: str) -> str:
    """``text`` percent-decoded until it no longer changes (double encoding included)."""
    for _ in range(5):
        once = unquote(text)
        if once == text:
            break
        text = once
    return text


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default``; safe for ``Location``."""
    if not target or len(target) > MAX_TARGET or _unsafe_char(target):
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    path = _decoded(parts.path)
    if not path.startswith("/") or path.startswith("//") or _unsafe_char(path):
        return default
    return quote(target, safe=_KEEP)


def local_referer(referer: str | None, host: str, default: str) -> str:
    """The page a form was sent from (its ``Referer``), if it is one of ours, else ``default``."""
    if not referer:
        return default
    try:
        parts = urlsplit(referer)
    except ValueError:
        return default
    if parts.scheme not in ("http", "https") or parts.netloc != host:
        return default
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return local_path(path, default)
