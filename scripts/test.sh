#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: real TimescaleDB, real Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
