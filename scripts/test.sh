#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: real TimescaleDB, real Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
# Two workers by default (each starts its own cluster); PYTEST_WORKERS=0 runs in one process.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" "$@"
