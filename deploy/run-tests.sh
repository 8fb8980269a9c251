#!/usr/bin/env bash
# The test command (`make test`): bootstrap, start a test stack on its own ports and state
# folder (so it never touches the demo stack), run pytest, and always stop the stack.
# Extra arguments go to pytest.
# Exits non-zero when a test failed or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh --browser
.venv/bin/mypy  # types first: it takes seconds and needs no servers

# Always its own folder and ports: a test run must never wipe or reuse the demo's stack.
# PRINTFLEET_TEST_* move the ports, e.g. for two checkouts tested side by side.
export PRINTFLEET_STATE_DIR=$PWD/.stack/test
export PRINTFLEET_KAFKA_PORT=${PRINTFLEET_TEST_KAFKA_PORT:-29092}
export PRINTFLEET_KAFKA_CONTROLLER_PORT=${PRINTFLEET_TEST_KAFKA_CONTROLLER_PORT:-29093}
export PRINTFLEET_KAFKA_SASL_SSL_PORT=${PRINTFLEET_TEST_KAFKA_SASL_SSL_PORT:-29094}
export PRINTFLEET_KAFKA_SSL_PORT=${PRINTFLEET_TEST_KAFKA_SSL_PORT:-29095}
export PRINTFLEET_CLICKHOUSE_HTTP_PORT=${PRINTFLEET_TEST_CLICKHOUSE_HTTP_PORT:-28123}
export PRINTFLEET_CLICKHOUSE_TCP_PORT=${PRINTFLEET_TEST_CLICKHOUSE_TCP_PORT:-29000}

# A test run starts from empty servers: state left by an earlier run could hide a bug.
.venv/bin/printfleet stack down >/dev/null 2>&1 || true
rm -rf "$PRINTFLEET_STATE_DIR"
trap '.venv/bin/printfleet stack down' EXIT
.venv/bin/printfleet stack up
.venv/bin/python -m pytest "$@"
