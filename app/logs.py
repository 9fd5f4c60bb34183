"""Structured logging: JSON lines in production, readable lines in development.

Context goes in `extra={...}` (source, run_id, symbol) and comes out as fields. A filter
masks the passwords of URLs and any secret registered with `register_secret`, so a
connection string or key that slips into a message never reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_STANDARD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)", re.I)
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears in a log line."""
    if value and len(value) >= 6:
        _secrets.add(value)


def redact(text: str) -> str:
    """Mask URL passwords and registered secrets in text."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def _context(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message and any context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        # JSON escapes every other control character; these two break lines in some viewers.
        return redact(line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# Control characters (line breaks included): escaped in log lines, stripped from texts
# from outside before they are stored (ingest.p2p_normalise.clean_text).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: object) -> str:
    """Text with every control character (newlines included) written as an escape, so no
    value from outside can start a line of its own or hide part of one."""
    return CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(),
                        str(text))


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, logger, message, key=value context.
    Message and context are escaped; a traceback's lines are indented under its record,
    so none of them can pass for a record of its own."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        head = (f"{self.formatTime(record, self.datefmt)} {record.levelname:<7} "
                f"{record.name}: {escape(record.getMessage())}")
        context = " ".join(f"{escape(k)}={escape(v)}" for k, v in _context(record).items())
        line = f"{head} [{context}]" if context else head
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    " + escape(part) for part in trace.splitlines())
        return redact(line)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send all logs to stderr in the chosen format, replacing earlier handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("werkzeug", "urllib3", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
