"""The spool's lifecycle and failure paths: the directory lock, open/close in any order,
configuration errors, rollback of failed writes, a broken spool, threads sharing one
spool, and the error tree."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from producers import errors
from producers.errors import (
    ProducerError,
    SpoolBroken,
    SpoolClosed,
    SpoolConfigError,
    SpoolError,
    SpoolLocked,
    SpoolWriteFailed,
)
from producers.spool.spool import RecordClass, Spool
from spool_helpers import drain, make, view

K, D = RecordClass.KEEP, RecordClass.DROPPABLE
REPO = Path(__file__).resolve().parents[3]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "spool.lock"}


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from producers.spool.spool import Spool\n"
        "s = Spool(Path(sys.argv[1]), max_bytes=1 << 20); s.open()\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        with pytest.raises(SpoolLocked) as caught:
            make(tmp_path)
        assert caught.value.retriable and caught.value.holder == str(child.pid)
        assert str(child.pid) in str(caught.value)
    finally:
        child.communicate("\n", timeout=30)
    make(tmp_path).close()


def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first = make(tmp_path)
    with pytest.raises(SpoolLocked):
        make(tmp_path)
    first.close()
    make(tmp_path).close()


async def test_lifecycle_is_safe_twice_and_without_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
    with pytest.raises(SpoolClosed):
        spool.append_many([(K, b"x")])
    with spool:
        spool.append_many([(K, b"x")])
        assert spool.open() is spool.recovery  # already open: same report
    spool.close()
    with pytest.raises(SpoolClosed):
        spool.peek()
    assert spool.stats().keep.records == 1  # still answers after close
    async with Spool(tmp_path, max_bytes=1 << 20) as reopened:
        assert view(drain(reopened)) == [(1, K, b"x")]


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(SpoolConfigError):
        Spool(tmp_path, max_bytes=1000, segment_bytes=600)
    with pytest.raises(ValueError):
        Spool(tmp_path, max_bytes=1000, segment_bytes=10)
    with pytest.raises(SpoolConfigError):
        make(tmp_path).peek(max_records=0)


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_failed_write_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    spool = make(tmp_path)
    spool.append_many([(K, b"before"), (D, b"before")])
    files = snapshot(tmp_path)
    real_write = os.write
    calls = 0

    def flaky_write(fd: int, data: bytes | memoryview) -> int:
        nonlocal calls
        calls += 1
        if calls == fail_on_call:
            real_write(fd, bytes(data[:7]))  # a torn frame reaches the file first
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky_write)
    with pytest.raises(SpoolWriteFailed) as caught:
        spool.append_many([(K, b"new"), (D, b"new")])  # the second class fails on call 2
    assert caught.value.retriable and caught.value.errno == errno.ENOSPC
    assert snapshot(tmp_path) == files
    monkeypatch.undo()
    assert view(drain(spool)) == [(1, K, b"before"), (2, D, b"before")]
    assert spool.append_many([(K, b"after")]) == 5  # seqs of the failed append are skipped
    spool.close()
    reopened = make(tmp_path)
    assert reopened.recovery.clean and [r.payload for r in drain(reopened)][-1] == b"after"


def test_failed_rollback_breaks_the_spool_until_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = make(tmp_path)
    spool.append_many([(K, b"before")])

    def failing(*args: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", failing)
    monkeypatch.setattr(os, "truncate", failing)
    with pytest.raises(SpoolBroken):
        spool.append_many([(K, b"new")])
    with pytest.raises(SpoolBroken):
        spool.peek()
    monkeypatch.undo()
    spool.close()
    assert view(drain(make(tmp_path))) == [(1, K, b"before")]


def test_error_tree_leaves_say_whether_retriable() -> None:
    spool_errors = [
        cls for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, SpoolError) and cls is not SpoolError
    ]
    assert len(spool_errors) == 9  # FrameError too (internal; the spool raises SpoolBroken)
    doc = errors.__doc__ or ""
    for cls in spool_errors + [SpoolError, ProducerError]:
        assert issubclass(cls, ProducerError)
        assert "retriable" in vars(cls), cls
        assert cls.__name__ in doc and cls.__doc__
    retriable = {c.__name__ for c in spool_errors if c.retriable}
    assert retriable == {"SpoolLocked", "SpoolFull", "SpoolWriteFailed"}


def test_threads_may_share_one_spool(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=1024)
    uploaded: list[int] = []

    def poller(n: int) -> None:
        for i in range(200):
            spool.append_many([(K if i % 3 else D, b"%d-%d" % (n, i))])

    def uploader() -> None:
        for _ in range(300):
            batch = spool.peek(max_records=7)
            spool.ack(batch)
            uploaded.extend(r.seq for r in batch.records)

    threads = [threading.Thread(target=poller, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=uploader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rest = [r.seq for r in drain(spool)]
    assert sorted(set(uploaded)) + rest == list(range(1, 601))
    assert spool.stats().pending_records == len(rest)


def test_open_of_an_unusable_directory_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(SpoolBroken):
        Spool(tmp_path / "file" / "spool", max_bytes=1 << 20).open()
