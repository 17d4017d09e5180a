"""Log records as JSON lines (for shipping) or text (for a terminal), each with its request id.

Levels: INFO has one access line per request, start-up, reloads and mail outcomes by message
id; addresses, tokens and bodies are never logged at INFO (a mail's recipient is at DEBUG).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from rolebook.api.request_context import REQUEST_ID

TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request its thread is serving ('-' outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "request_id": record.request_id}
        http = getattr(record, "http", None)
        if http is not None:
            line["http"] = http
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure(level: str, fmt: str) -> None:
    """`fmt` is text, json, or auto: text on a terminal, JSON lines otherwise."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
