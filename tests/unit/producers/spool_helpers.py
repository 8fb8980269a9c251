"""Shared helpers of the spool unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from producers.spool.spool import RecordClass, Spool, SpooledRecord


def make(directory: Path, **kw: object) -> Spool:
    options: dict[str, object] = {"max_bytes": 1 << 20, "segment_bytes": 4096, "fsync": False}
    options.update(kw)
    spool = Spool(directory, **options)  # type: ignore[arg-type]
    spool.open()
    return spool


def drain(spool: Spool) -> list[SpooledRecord]:
    """Every pending record, without acking."""
    return list(spool.peek(max_records=10**9, max_bytes=10**12).records)


def view(records: Sequence[SpooledRecord]) -> list[tuple[int, RecordClass, bytes]]:
    return [(r.seq, r.record_class, r.payload) for r in records]
