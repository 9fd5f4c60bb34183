#!/usr/bin/env bash
# Set up (idempotently) and run p2pdash on its embedded TimescaleDB at http://127.0.0.1:8050;
# with no exchange reachable (no internet), it runs the DEMO on a simulated exchange.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/p2pdash run --demo-when-offline "$@"
