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
