"""Entry point of the local ClickHouse server process: `python -m deploy.clickhouse_serve DATA_DIR`.

chdb holds the whole ClickHouse engine. Its public `chdb.connect()` cannot listen on a
port, but `_chdb.query` can start ClickHouse's own HTTP and native TCP servers, using the
`config.xml` in the working directory. The endless query below keeps the process, and so
the servers, alive until SIGTERM. `_chdb.query` is private API: pyproject pins chdb.
"""

from __future__ import annotations

import sys

from chdb import _chdb

_SERVE = (
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    "SELECT sleepEachRow(1) FROM numbers(1000000000) SETTINGS max_block_size=1"
)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.clickhouse_serve DATA_DIR", file=sys.stderr)
        return 2
    # The output format must be TabSeparated: with others the servers do not start.
    _chdb.query(_SERVE, "TabSeparated", path=argv[0])  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
