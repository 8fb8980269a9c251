"""Spool bench: what an append, a peek, an ack and a recovery cost on this disk.

`python -m benchmarks.spool [--dir DIR] [--runs N]`. Records are 130-byte random
payloads (a heartbeat message is 127 bytes), one in five DROPPABLE. Each figure is the
median of N runs, in milliseconds; the spool lives in a fresh temporary directory under
`--dir` (default: the system temp dir, so pass a directory on the collector's disk).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from producers.spool.spool import RecordClass, Spool


def _items(n: int, size: int, mixed: bool = True) -> list[tuple[RecordClass, bytes]]:
    keep, drop = RecordClass.KEEP, RecordClass.DROPPABLE
    return [(drop if mixed and i % 5 == 0 else keep, os.urandom(size)) for i in range(n)]


def _median_ms(runs: int, setup: Callable[[], Callable[[], object]]) -> float:
    times = []
    for _ in range(runs):
        action = setup()
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench(base: Path, runs: int) -> list[tuple[str, float]]:
    """(what, median ms) rows; every spool is made and removed under `base`."""
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        for fsync in (True, False):
            spool = Spool(Path(tmp) / f"s{fsync}", max_bytes=1 << 30, fsync=fsync)
            spool.open()
            tag = "fsync" if fsync else "no fsync"

            def append(items: list[tuple[RecordClass, bytes]]) -> Callable[[], object]:
                return lambda: spool.append_many(items)

            one_class, both, single = _items(1000, 130, False), _items(1000, 130), _items(1, 130)
            cases: list[tuple[str, Callable[[], Callable[[], object]]]] = [
                ("append_many 1000 x 130 B, one class", lambda: append(one_class)),
                ("append_many 1000 x 130 B, both classes", lambda: append(both)),
                ("append_many 1 x 130 B", lambda: append(single)),
                ("peek 1000", lambda: lambda: spool.peek(1000)),
                ("peek 1000 + ack", lambda: lambda: spool.ack(spool.peek(1000))),
                ("peek 1", lambda: lambda: spool.peek(1)),
            ]
            for what, setup in cases:
                rows.append((f"{what}, {tag}", _median_ms(runs, setup)))
            spool.close()
        directory = Path(tmp) / "recover"
        spool = Spool(directory, max_bytes=1 << 30, fsync=False)
        spool.open()
        for _ in range(100):
            spool.append_many(_items(1000, 130))
        spool.close()

        def reopen() -> Callable[[], object]:
            again = Spool(directory, max_bytes=1 << 30, fsync=True)

            def cycle() -> None:
                again.open()
                again.close()

            return cycle

        rows.append(("open (recovery) of 100,000 records, 15.9 MB", _median_ms(runs, reopen)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spool", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    print("| operation | median ms |\n|---|---:|")
    for what, ms in bench(args.dir, args.runs):
        print(f"| {what} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
