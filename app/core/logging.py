"""Logging set-up: JSON lines on stdout in production, readable text in development.

Log lines never carry request bodies, raw paths, query strings, tokens or passwords: the access
log names the route template, and SQL parameters are hidden from database errors (db.py).
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from app.core.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-5s %(name)s %(message)s"
# What a LogRecord carries by itself; anything else on a record came from `extra=`.
# uvicorn's "color_message" repeats the message with terminal colour codes.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (test runners swap it); being our own
    class, configuring again replaces it instead of adding a second one."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Send every log record to stdout in the configured format; safe to call again."""
    handler = _Handler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn installs its own text handlers before it imports the app: route its records
    # through ours, so that production output is JSON throughout. Its access log would
    # print raw paths with query strings (a patient search names the patient): ours
    # replaces it.
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
