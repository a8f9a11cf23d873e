"""Masking secrets in URLs before they reach a log line, an error, an overlay, a JSON record or a benchmark file.

One function does it for the whole package, `mask_credentials(text)`: every URL inside `text` loses its user
information (`rtsp://***@host/...`) and the values of query parameters named like secrets (`?token=***`).

User information is everything between `scheme://` and the LAST `@` of the URL, whatever characters the
password holds (`@`, `/`, `?`, `#`, `:`), unless every `@` sits inside the value of a `name=value` query
parameter (`rtsp://cam/live?contact=ops@example.com`). Masking too much costs a less readable log line;
masking too little leaks a password, so every doubt is resolved towards masking.
"""
from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MASK = "***"

# Query parameter names (lower case, substrings) whose values are secrets.
SECRET_PARAMETERS = ("token", "key", "pass", "pwd", "secret", "auth", "signature", "sig", "credential", "session")

_SCHEME = r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)"
_URL_IN_TEXT = re.compile(_SCHEME + r"(?P<rest>\S+)")
_WHOLE_URL = re.compile(_SCHEME + r"(?P<rest>.+)", re.DOTALL)


def is_secret_parameter(name: str) -> bool:
    """True for query parameter names that carry secrets (token, api_key, password, auth, X-Amz-Signature...)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAMETERS)


def mask_url(url: str) -> str:
    """`url` with its user information and secret query values replaced by `***` (no-op without a scheme).

    `url` is one URL, whitespace included (a password may hold a space); in free text use `mask_credentials`.
    """
    match = _WHOLE_URL.fullmatch(url)
    if match is None:
        return url
    scheme, rest = match.group("scheme"), match.group("rest")
    if "@" in rest and not _at_signs_only_in_query_values(url):
        rest = MASK + rest[_user_info_end(url, rest):]
    return scheme + _mask_query(rest)


def mask_credentials(text: str) -> str:
    """`text` with every URL in it masked by `mask_url` (a URL runs from `scheme://` to the next whitespace)."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def _at_signs_only_in_query_values(url: str) -> bool:
    """True when the standard parse finds no user information and every `@` is inside a query value."""
    parts = urlsplit(url)
    if "@" in parts.netloc or "@" in parts.path or "@" in parts.fragment:
        return False
    try:
        parts.port  # noqa: B018 - a password cut at '/', '?' or '#' leaves 'user:pass' as host:port
    except ValueError:
        return False
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not pairs or any("@" in name for name, _ in pairs):
        return False
    return parts.query.count("@") == sum(value.count("@") for _, value in pairs)


def _user_info_end(url: str, rest: str) -> int:
    """Index in `rest` of the `@` that ends the user information.

    Where the standard parse is consistent (user information in the authority, a valid port, no `@` in the
    path or fragment), its last `@` in the authority; otherwise the URL's last `@`.
    """
    parts = urlsplit(url)
    try:
        consistent = "@" in parts.netloc and "@" not in parts.path + parts.fragment and (parts.port or 0) >= 0
    except ValueError:
        consistent = False
    if consistent:
        return parts.netloc.rindex("@")
    return rest.rindex("@")


def _mask_query(rest: str) -> str:
    """Mask the values of secret-named parameters in the query part of `rest` (host, path, query, fragment)."""
    query_start = rest.find("?")
    if query_start < 0:
        return rest
    fragment_start = rest.find("#", query_start)
    end = len(rest) if fragment_start < 0 else fragment_start
    fields = rest[query_start + 1:end].split("&")
    masked = []
    for field in fields:
        name, sep, value = field.partition("=")
        masked.append(f"{name}={MASK}" if sep and value and is_secret_parameter(name) else field)
    return rest[:query_start + 1] + "&".join(masked) + rest[end:]


def mask_in(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, numbers) with every string masked."""
    if isinstance(obj, str):
        return mask_credentials(obj)
    if isinstance(obj, dict):
        return {key: mask_in(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_in(value) for value in obj]
    return obj


class MaskingFilter(logging.Filter):
    """A logging filter that masks URLs in every record it passes (the CLI puts it on its log handler, so a
    URL that reaches a log line through any library is masked too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
