"""Access-log hygiene: a secret carried in a URL's query string (`?token=`, `access_token=`)
never reaches the HTTP server's access log."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

# any query parameter whose name mentions a token, up to the next parameter or the line's end
_SECRET_PARAM = re.compile(r"([?&][^=&\s]*token[^=&\s]*=)[^&\s\"]*", re.IGNORECASE)
# uvicorn logs HTTP requests on uvicorn.access and WebSocket handshakes on uvicorn.error
SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_query_secrets(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", text)


class QuerySecretFilter(logging.Filter):
    """Rewrites a record's message arguments (uvicorn logs the path with its query string as one
    of them) so that no token value is formatted into the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_query_secrets(record.msg)
        return True


def redact_access_log(logger_names: tuple[str, ...] = SERVER_LOGGERS) -> Callable[[], None]:
    """Install the filter on the server's loggers; returns the function that removes it."""
    loggers = [logging.getLogger(name) for name in logger_names]
    f = QuerySecretFilter()
    for logger in loggers:
        logger.addFilter(f)

    def remove() -> None:
        for logger in loggers:
            logger.removeFilter(f)

    return remove
