"""Log records as JSON lines (for shipping) or text (for a terminal), each with its request id.

Levels: INFO has one access line per request, start-up, reloads and mail outcomes by message
id; addresses, tokens and bodies are never logged at INFO (a mail's recipient is at DEBUG).
"""

from __future__ import annotations

import logging
import os
import sys
import time

import orjson

from rolebook.api import process_id, request_context
from rolebook.api.line_writer import LineWriter
from rolebook.api.timestamps import utc_stamp

TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request its thread is serving ('-' outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_context.REQUEST_ID.get()
        return True


def json_line(created: float, level: str, logger: str, message: str, request_id: str,
              http: dict | None = None, exception: str | None = None) -> str:
    line = {"time": utc_stamp(created, 3), "level": level, "logger": logger, "message": message,
            "request_id": request_id}
    if http is not None:
        line["http"] = http
    if exception:
        line["exception"] = exception
    return orjson.dumps(line).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json_line(record.created, record.levelname, record.name, record.getMessage(),
                         record.request_id, getattr(record, "http", None),
                         self.formatException(record.exc_info) if record.exc_info else None)


class _Descriptor:
    """Writes text straight to a file descriptor. A buffered stream's lock, held by the writer
    thread at the moment the supervisor forks, would stay held forever in the new worker."""

    def __init__(self, fd: int, encoding: str):
        self.fd, self.encoding = fd, encoding

    def write(self, text: str) -> None:
        data = memoryview(text.encode(self.encoding, "backslashreplace"))
        while data:
            data = data[os.write(self.fd, data):]

    def flush(self) -> None:
        pass


def _sink(stream):
    try:
        return _Descriptor(stream.fileno(), getattr(stream, "encoding", None) or "utf-8")
    except (AttributeError, OSError, ValueError):  # a stream with no descriptor (a test's)
        return stream


class BatchedStreamHandler(logging.StreamHandler):
    """A StreamHandler whose lines a thread writes in batches (api/line_writer.py): at one line
    per request, a write and a lock per line cost a worker a tenth of its time. A warning or an
    error is written before emit returns, so it is in the log before the answer it explains."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self._pid, self._writer = None, None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.put(self.format(record))
            if record.levelno >= logging.WARNING:
                self._writer.flush()
        except Exception:
            self.handleError(record)

    def put(self, line: str | tuple) -> None:
        """A formatted line, or an access line's fields (access_line)."""
        if self._pid != process_id.pid():  # first use, or a forked worker: its own thread
            self._pid, self._writer = process_id.pid(), LineWriter(
                lambda: _sink(self.stream), name="log-lines", render=_line)
        self._writer.put(line + self.terminator if line.__class__ is str else line)

    def flush(self) -> None:
        if self._writer is not None and self._pid == process_id.pid():
            self._writer.flush()
        super().flush()

    def close(self) -> None:
        if self._writer is not None and self._pid == process_id.pid():
            self._writer.close()
        super().close()


def access_fields(method: str, route: str, status: int, seconds: float, size: int,
                  sub: str | None) -> tuple[str, dict]:
    """An access line's message and its `http` fields."""
    http = {"method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 3), "bytes": size, "sub": sub}
    return f"{method} {route} {status} {seconds * 1000:.1f}ms", http


def access_line(logger: logging.Logger, fields: tuple) -> None:
    """Log one access line; `fields` are access_fields' arguments.

    Where configure() set up the one JSON handler, the fields go to its writer thread as they
    are, and the line is formatted there with the rest of its batch: no LogRecord, no handler
    lock, no formatting in the request thread. Formatted per request, the line cost waitress
    3% of its requests per second at one check per request (four alternating pairs). Wherever
    logging is set up otherwise (text on a terminal, a test's capture, a filter added), the
    line is logged as usual."""
    handlers = logging.root.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (handler is None or logger.handlers or logger.filters or not logger.propagate
            or handler.__class__ is not BatchedStreamHandler or handler.level > logging.INFO
            or handler.formatter.__class__ is not JsonFormatter or len(handler.filters) != 1
            or handler.filters[0].__class__ is not RequestIdFilter):
        message, http = access_fields(*fields)
        logger.info("%s", message, extra={"http": http})
        return
    handler.put((time.time(), logger.name, request_context.REQUEST_ID.get(), fields))


def _line(item: str | tuple) -> str:
    """A formatted line as it is, or an access line's line (see access_line), in the writer."""
    if item.__class__ is str:
        return item
    created, logger, request_id, fields = item
    message, http = access_fields(*fields)
    return json_line(created, "INFO", logger, message, request_id, http) + "\n"


def configure(level: str, fmt: str) -> None:
    """`fmt` is text, json, or auto: text on a terminal, JSON lines otherwise."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = BatchedStreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
