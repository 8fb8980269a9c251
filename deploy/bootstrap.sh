#!/usr/bin/env bash
# Sets up a fresh checkout: checks the tools, creates .venv, installs printfleet with its
# cloud, local-stack, test and bench extras and resolves the Kafka broker jars from Maven Central. Idempotent and quick
# when nothing changed: each step runs again only when its input changed.
# --browser (the test command's): also Debian's Chromium for the dashboard's browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: $1 not found: $2" >&2; exit 1; }; }
need "$PYTHON" "printfleet needs Python 3.11 or newer"
need java "the local Kafka broker needs Java 17 or newer"
need mvn "the Kafka broker jars are resolved with Maven"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: $("$PYTHON" -V) is too old: printfleet needs Python 3.11+" >&2; exit 1; }
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
[ "${java_major:-0}" -ge 17 ] || { echo "bootstrap: Java $java_major is too old: Kafka 4 needs 17+" >&2; exit 1; }

# The browser tests (tests/integration/test_dashboard_browser.py) drive Debian's Chromium
# through Playwright: the system package, never a browser that Playwright downloads. A
# font, so screenshots show text. Only the tests need it: `make demo` runs without it.
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null 2>&1 \
    || { echo "bootstrap: /usr/bin/chromium is missing and there is no apt-get: install Chromium at /usr/bin/chromium for the browser tests" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] \
    || { echo "bootstrap: /usr/bin/chromium is missing; installing it needs root: sudo apt-get install chromium fonts-dejavu-core" >&2; exit 1; }
  echo "bootstrap: installing Debian's chromium for the browser tests"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing printfleet and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[cloud,stack,test,bench]'
  touch .venv/.installed
fi

lib=deploy/kafka/target/lib
if [ ! -f "$lib/.resolved" ] || [ deploy/kafka/pom.xml -nt "$lib/.resolved" ]; then
  echo "bootstrap: resolving the Kafka broker jars from Maven Central"
  rm -rf "$lib"
  mvn -q -B -f deploy/kafka/pom.xml package
  touch "$lib/.resolved"
fi
echo "bootstrap: ready ($(.venv/bin/python -V), Java $java_major, $(ls $lib | grep -c jar) broker jars)"
