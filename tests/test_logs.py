"""Structured logs: JSON lines with context fields, never a password or a registered secret."""

from __future__ import annotations

import json
import logging

from app.logs import JsonFormatter, TextFormatter, register_secret


def record(message: str, **extra: object) -> logging.LogRecord:
    entry = logging.makeLogRecord({"name": "ingest", "levelname": "WARNING", "msg": message})
    entry.__dict__.update(extra)
    return entry


def test_json_lines_carry_context():
    line = JsonFormatter().format(record("frame skipped", run_id=7, symbol="BTCUSDT"))
    entry = json.loads(line)
    assert entry["message"] == "frame skipped"
    assert entry["run_id"] == 7 and entry["symbol"] == "BTCUSDT"
    assert entry["level"] == "warning" and entry["ts"].endswith("+00:00")


def test_passwords_in_urls_and_registered_secrets_are_masked():
    register_secret("s3cr3t-api-key-value")
    message = "connect postgresql://app:pa55word@db:5432/x with s3cr3t-api-key-value"
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record(message))
        assert "pa55word" not in line and "s3cr3t-api-key-value" not in line
        assert "postgresql://app:***@db:5432/x" in line


def test_no_value_from_outside_can_forge_a_log_line():
    forged = "eve\n05:00:00 INFO    app.audit: audit login.success [actor=admin"
    record = logging.LogRecord("app.audit", logging.INFO, __file__, 1, "audit %s", ("login",),
                               None)
    record.actor = forged
    record.agent = "curl\r\x1b[2Kok\u2028"
    for formatter in (TextFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert "\n" not in line and "\r" not in line and "\x1b" not in line
        assert "\u2028" not in line
    assert "actor=eve\\n05:00:00" in TextFormatter().format(record)
    try:
        raise ValueError(forged)
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = TextFormatter().format(record)
    assert all(line.startswith("    ") for line in text.splitlines()[1:]), \
        "a traceback's lines are indented under their record"
