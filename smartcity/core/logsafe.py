"""Values fit to be logged or shown: outside input without control characters (no forged log
lines), URLs without credentials (camera passwords, secret query parameters)."""

from __future__ import annotations

import re
from urllib.parse import unquote

MAX_LOGGED = 200
"""Characters of one outside value kept in a log line."""

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: anything a log
# viewer may take for a line break or a terminal escape
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# a URL inside free text (an FFmpeg message, an exception): up to white space or a quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")

SECRET_QUERY_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "pw", "secret", "token", "access_token", "auth", "authorization",
        "key", "apikey", "api_key", "signature", "sig", "credentials", "user_pass", "session", "sessionid",
    }
)  # fmt: skip
"""Query parameter names whose values are credentials (matched without case; any name that
ends in one of them after `_` or `-` too, e.g. `x-auth-token`, `camera_password`)."""

REDACTED = "***"


def safe(value: object, limit: int = MAX_LOGGED) -> str:
    """`value` as text for one log line: control characters escaped (`\\n`, `\\x1b`), cut at
    `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return _CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def is_secret_key(name: str) -> bool:
    key = unquote(name).strip().lower()
    return key in SECRET_QUERY_KEYS or any(key.endswith(("_" + k, "-" + k)) for k in SECRET_QUERY_KEYS)


def redact_url(url: str) -> str:
    """`url` without its password and secret query values, for logs and API answers:
    `rtsp://user:***@host/x`, `http://h/x?pwd=***&x=1`. The user name stays (operators need
    it). A password may contain `@` or `/` unencoded: the credentials end at the last `@`
    before the path. Control characters are escaped."""
    return safe(_redact(url), limit=2048)


def redact_urls_in(text: str) -> str:
    """`text` (an error message, a library's log line) with every URL in it redacted."""
    return safe(_URL_IN_TEXT.sub(_redact_match, text), limit=2048)


def _redact_match(m: re.Match[str]) -> str:
    url = m.group()
    closing = ""
    while url and url[-1] in ").,;" and not (url[-1] == ")" and "(" in url):
        url, closing = url[:-1], url[-1] + closing  # the sentence's punctuation, not the URL's
    return _redact(url) + closing


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _redact_query(url)
    userinfo, hostpart = _split_credentials(rest)
    if userinfo is not None:
        user, has_password, _ = userinfo.partition(":")
        return f"{scheme}://{user}{':' + REDACTED if has_password else ''}@{_redact_query(hostpart)}"
    return f"{scheme}://{_redact_query(rest)}"


def _split_credentials(rest: str) -> tuple[str | None, str]:
    """(user info, the rest) of what follows `scheme://`. A password may hold an unencoded
    `@`, `/`, `?` or `#`: user info with a `:` before any of `/?#` runs to the last `@`
    (when the `@` was in the path or query instead, more is hidden than needed, never less);
    otherwise only an `@` inside the authority separates user info."""
    last_at = rest.rfind("@")
    if last_at < 0:
        return None, rest
    before = rest[:last_at]
    colon = before.find(":")
    delimiters = [i for i in (before.find(c) for c in "/?#") if i >= 0]
    first_delim = min(delimiters) if delimiters else len(before)
    if 0 <= colon < first_delim:
        return before, rest[last_at + 1 :]
    authority_end = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    at = rest.rfind("@", 0, authority_end)
    if at < 0:
        return None, rest
    return rest[:at], rest[at + 1 :]


def _redact_query(text: str) -> str:
    """Secret query values of `text` (host, path, query, fragment) hidden; the rest verbatim."""
    head, q, tail = text.partition("?")
    if not q:
        return text
    query, hash_, fragment = tail.partition("#")
    pieces = []
    for piece in query.split("&"):
        key, eq, _ = piece.partition("=")
        pieces.append(f"{key}={REDACTED}" if eq and is_secret_key(key) else piece)
    return f"{head}?{'&'.join(pieces)}{hash_}{fragment}"
