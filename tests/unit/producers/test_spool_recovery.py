"""Recovery on open: torn tails cut at every byte, a flipped byte at every byte, zeroed
tails, crashes between ack and delete, a lost state file, and kill -9 of a writer."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from producers.errors import SpoolBroken
from producers.spool.spool import RecordClass, RecoveryReport, Spool, SpooledRecord
from producers.spool.frames import HEADER_BYTES, MAGIC

K, D = RecordClass.KEEP, RecordClass.DROPPABLE
REPO = Path(__file__).resolve().parents[3]
PAYLOADS = [b"r%02d-" % i + b"abcdefghij"[: i % 10] * (1 + i % 4) for i in range(12)]


def make(directory: Path, **kw: object) -> Spool:
    options: dict[str, object] = {"max_bytes": 1 << 20, "segment_bytes": 1 << 16, "fsync": False}
    options.update(kw)
    spool = Spool(directory, **options)  # type: ignore[arg-type]
    spool.open()
    return spool


def reopen(directory: Path) -> tuple[RecoveryReport, list[SpooledRecord]]:
    spool = make(directory)
    try:
        return spool.recovery, list(spool.peek(10**9, 10**12).records)
    finally:
        spool.close()


def one_segment(directory: Path, payloads: list[bytes]) -> tuple[Path, bytes, list[int]]:
    """A spool with one KEEP segment holding `payloads`; its path, bytes, frame ends."""
    spool = make(directory)
    spool.append_many([(K, p) for p in payloads])
    spool.close()
    (segment,) = directory.glob("keep-*.seg")
    ends, end = [], 0
    for p in payloads:
        end += HEADER_BYTES + len(p)
        ends.append(end)
    return segment, segment.read_bytes(), ends


def test_truncation_at_every_byte_keeps_every_complete_record(tmp_path: Path) -> None:
    segment, data, ends = one_segment(tmp_path / "orig", PAYLOADS)
    assert len(data) == ends[-1] and MAGIC not in b"".join(PAYLOADS)
    for cut in range(len(data) + 1):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        (work / segment.name).write_bytes(data[:cut])
        report, records = reopen(work)
        complete = sum(1 for e in ends if e <= cut)
        assert [r.payload for r in records] == PAYLOADS[:complete], cut
        assert [r.seq for r in records] == list(range(1, complete + 1))
        last_end = ends[complete - 1] if complete else 0
        assert report.dropped_bytes == cut - last_end, cut
        assert report.dropped_records == (1 if cut > last_end else 0), cut
        assert report.torn_tails == (1 if cut > last_end and complete else 0)
        assert report.records == complete
        again, same = reopen(work)  # the tail was cut on disk: the next open is clean
        assert again.clean and same == records
        shutil.rmtree(work)


def test_a_flipped_byte_loses_only_its_own_record(tmp_path: Path) -> None:
    segment, data, ends = one_segment(tmp_path / "orig", PAYLOADS[:6])
    starts = [0] + ends[:-1]
    for offset in range(len(data)):
        work = tmp_path / f"flip{offset}"
        work.mkdir()
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        (work / segment.name).write_bytes(bytes(damaged))
        report, records = reopen(work)
        hit = max(i for i, s in enumerate(starts) if s <= offset)
        expected = [p for i, p in enumerate(PAYLOADS[:6]) if i != hit]
        assert [r.payload for r in records] == expected, offset
        assert [r.seq for r in records] == [i + 1 for i in range(6) if i != hit]
        assert report.dropped_records == 1 and report.dropped_bytes == ends[hit] - starts[hit]
        last = hit == 5
        assert (report.corrupt_regions, report.torn_tails) == ((0, 1) if last else (1, 0))
        again, same = reopen(work)  # rewritten without the bad frame
        assert again.clean and [r.payload for r in same] == expected
        shutil.rmtree(work)


KINDS = [b"heartbeat-", b"event-----", b"job-------"]  # ten bytes each: the prefix kept
TAGGED = [KINDS[i % 3] + b"%03d" % i + b"x" * (i % 5) for i in range(9)]


def test_a_cut_at_every_byte_is_counted_exactly_and_by_kind(tmp_path: Path) -> None:
    """The spool's index says what a cut segment held: every record lost is counted,
    with the first bytes of its payload (for Avro records, the kind)."""
    segment, data, ends = one_segment(tmp_path / "orig", TAGGED)
    entries = (tmp_path / "orig" / (segment.name + ".idx")).read_bytes()
    for cut in range(len(data) + 1):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        (work / segment.name).write_bytes(data[:cut])
        (work / (segment.name + ".idx")).write_bytes(entries)
        report, records = reopen(work)
        complete = sum(1 for e in ends if e <= cut)
        assert [r.payload for r in records] == TAGGED[:complete], cut
        lost = TAGGED[complete:]
        assert report.dropped_records == len(lost), cut
        want = {k[:10]: sum(1 for p in lost if p[:10] == k[:10]) for k in KINDS}
        assert dict(report.lost_by_prefix) == {k: n for k, n in want.items() if n}, cut
        again, same = reopen(work)  # the index was written anew: nothing is counted twice
        assert again.dropped_records == 0 and same == records, cut
        shutil.rmtree(work)


def test_a_segment_lost_whole_is_counted_from_its_index(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=128)
    spool.append_many([(K, p) for p in TAGGED[:3]])
    spool.append_many([(K, p) for p in TAGGED[3:6]])  # a second segment
    spool.ack(spool.peek(max_records=1))
    spool.close()
    first = sorted(tmp_path.glob("keep-*.seg"))[0]
    first.unlink()  # bad storage: the file is gone, its index is not
    report, records = reopen(tmp_path)
    assert [r.payload for r in records] == TAGGED[3:6]
    assert report.dropped_records == 2  # the first was acked before: not lost
    assert dict(report.lost_by_prefix) == {TAGGED[1][:10]: 1, TAGGED[2][:10]: 1}
    assert not (tmp_path / (first.name + ".idx")).exists()


def test_garbage_runs_between_and_after_frames(tmp_path: Path) -> None:
    segment, data, ends = one_segment(tmp_path, PAYLOADS[:4])
    junk = b"\x00" * 100 + MAGIC + b"\x07" * 40  # a fake frame start inside the junk
    segment.write_bytes(data[: ends[1]] + junk + data[ends[1] :] + b"\x00" * 4096)
    report, records = reopen(tmp_path)
    assert [r.payload for r in records] == PAYLOADS[:4]
    assert report.corrupt_regions == 1 and report.torn_tails == 1
    assert report.dropped_bytes == len(junk) + 4096
    assert report.dropped_records == 0  # the index knows every record is still there: only junk
    spool = make(tmp_path)
    assert spool.append_many([(K, b"after")]) == 5
    spool.close()
    assert [r.seq for r in reopen(tmp_path)[1]] == [1, 2, 3, 4, 5]


def test_acked_records_stay_gone_when_deletion_did_not_happen(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=256)
    for i in range(20):
        spool.append_many([(K if i % 2 else D, b"%03d" % i * 10)])
    files = {p.name: p.read_bytes() for p in tmp_path.glob("*.seg")}
    batch = spool.peek(max_records=13)
    spool.ack(batch)
    spool.close()
    for name, content in files.items():  # crash after the state file, before the unlinks
        (tmp_path / name).write_bytes(content)
    report, records = reopen(tmp_path)
    assert [r.seq for r in records] == list(range(14, 21))
    assert report.acked_skipped >= 13 and report.acked_seq == 13 and report.clean
    left = sorted(p.name for p in tmp_path.glob("*.seg"))
    assert len(left) < len(files)  # wholly acked segments were deleted at open


def test_a_segment_changed_under_an_open_spool_breaks_it_until_reopen(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append_many([(K, p) for p in PAYLOADS[:4]])
    (segment,) = tmp_path.glob("keep-*.seg")
    data = bytearray(segment.read_bytes())
    data[HEADER_BYTES + 2] ^= 0x01  # bit rot in the first payload
    segment.write_bytes(bytes(data))
    with pytest.raises(SpoolBroken):
        spool.peek()
    with pytest.raises(SpoolBroken):
        spool.append_many([(K, b"x")])
    spool.close()
    report, records = reopen(tmp_path)
    assert [r.payload for r in records] == PAYLOADS[1:4] and report.dropped_records == 1


def test_unreadable_state_file_resets_and_says_so(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append_many([(K, b"a"), (K, b"b")])
    spool.ack(spool.peek(max_records=1))
    spool.close()
    (tmp_path / "ack.state").write_bytes(b"garbage")
    report, records = reopen(tmp_path)
    assert report.state_reset and not report.clean
    assert [r.payload for r in records] == [b"a", b"b"]  # uploaded again; downstream dedups


CHILD = """
import sys
from pathlib import Path
from producers.spool.spool import RecordClass, Spool

def payload(seq): return b"%d:" % seq + bytes([65 + seq % 26]) * (40 + seq % 150)
def cls(seq): return RecordClass.DROPPABLE if seq % 3 == 0 else RecordClass.KEEP

spool = Spool(Path(sys.argv[1]), max_bytes=64 << 20, segment_bytes=16384, fsync=True)
spool.open()
i = 0
while True:
    first = spool.stats().next_seq
    last = spool.append_many([(cls(s), payload(s)) for s in range(first, first + 1 + i % 17)])
    print("A", first, last, flush=True)
    if i % 7 == 3:
        batch = spool.peek(max_records=25)
        spool.ack(batch)
        print("K", batch.last_seq, flush=True)
    i += 1
"""


def expected_payload(seq: int) -> bytes:
    return b"%d:" % seq + bytes([65 + seq % 26]) * (40 + seq % 150)


@pytest.mark.parametrize("round_", range(3))
def test_kill_9_loses_no_returned_append_and_resurrects_no_ack(
    tmp_path: Path, round_: int
) -> None:
    """A writer appends (and sometimes acks) in a loop, printing each returned append's
    seqs and each returned ack, and is SIGKILLed at a random moment, three times over."""
    rng = random.Random(round_)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    acked = 0
    returned: set[int] = set()  # seqs of appends that returned
    for _ in range(3):  # kill the same spool three times
        command = [sys.executable, "-c", CHILD, str(tmp_path)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, env=env) as child:
            assert child.stdout is not None
            lines: list[bytes] = []
            target = rng.randrange(20, 150)
            while len(lines) < target:
                line = child.stdout.readline()
                assert line, "the writer died on its own"
                lines.append(line)
            time.sleep(rng.random() * 0.005)  # land anywhere in the next append or ack
            os.kill(child.pid, signal.SIGKILL)
            lines += child.stdout.read().splitlines(keepends=True)
        assert child.returncode == -signal.SIGKILL
        for line in lines:
            if line.endswith(b"\n"):  # a cut-off last line proves nothing
                kind, *numbers = line.split()
                if kind == b"A":
                    returned.update(range(int(numbers[0]), int(numbers[1]) + 1))
                else:
                    acked = max(acked, int(numbers[0]))
        spool = make(tmp_path)
        try:
            stats = spool.stats()
            records = list(spool.peek(10**9, 10**12).records)
        finally:
            spool.close()
        assert stats.acked_seq >= acked
        found = [r.seq for r in records]
        assert found == sorted(set(found)) and all(s > stats.acked_seq for s in found)
        assert {s for s in returned if s > stats.acked_seq} <= set(found)
        for r in records:
            assert r.payload == expected_payload(r.seq)
            assert r.record_class is (D if r.seq % 3 == 0 else K)
