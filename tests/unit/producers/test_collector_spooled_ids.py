"""A paged record spooled just before a crash whose cursor write was lost is not spooled
again when it is read again, even after a run in between uploaded and acked it (the
collector killed again before its poller re-read the page): `SpooledIds`.

The run in between is what made `test_collector_killed_mid_upload_loses_and_repeats_nothing`
fail now and then: two job records reached Kafka twice, 2.3 s apart."""

from __future__ import annotations

import uuid
from pathlib import Path

from producers.collector.collector import Collector
from producers.collector.config import CollectorSettings
from producers.collector.spooled_ids import SpooledIds
from producers.spool.spool import RecordClass
from schemas import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()


def _settings(state_dir: Path) -> CollectorSettings:
    return CollectorSettings(site_id="s", site_secret="x", state_dir=state_dir, gateway_url="https://127.0.0.1:1",
                             gateway_token="t", printer_urls=("https://127.0.0.1:1/printers/p1/",), status_port=-1)


def _spooled(collector: Collector) -> SpooledIds:
    guard = collector.spooled_ids  # what the device sinks check before spooling
    assert guard is not None
    return guard


async def test_a_record_acked_by_a_run_that_never_reread_its_page_is_still_not_spooled_again(tmp_path: Path) -> None:
    device = str(uuid.uuid4())
    job = {**sample_record("job", seed=1), "device_id": device}
    log = {**sample_record("device_log", seed=1), "device_id": device}
    heartbeat = {**sample_record("heartbeat", seed=1), "device_id": device}
    # Run 1 spooled these, then died before writing the cursors.
    async with Collector(_settings(tmp_path), REGISTRY) as run1:
        await run1.spool.append_many([(RecordClass.KEEP, REGISTRY.encode("job", job)),
                                      (RecordClass.KEEP, REGISTRY.encode("device_log", log)),
                                      (RecordClass.DROPPABLE, REGISTRY.encode("heartbeat", heartbeat))])

    # Run 2 finds them pending, uploads and acks them, and is killed before re-reading.
    async with Collector(_settings(tmp_path), REGISTRY) as run2:
        assert job["record_id"] in _spooled(run2) and log["record_id"] in _spooled(run2)
        assert heartbeat["record_id"] not in _spooled(run2)  # heartbeats are not paged: never read twice
        async with run2.spool.commit_lock:
            batch = await run2.spool.peek(100, 1 << 20)
        assert len(batch.records) == 3
        await run2.spool.ack(batch)

    # Run 3: nothing pending, the cursors still behind; the re-read must skip both.
    async with Collector(_settings(tmp_path), REGISTRY) as run3:
        assert not (await run3.spool.peek(100, 1 << 20)).records
        guard = _spooled(run3)
        assert job["record_id"] in guard and log["record_id"] in guard
        # A complete read of the jobs endpoint moves the cursor past the job: it may go.
        await guard.confirm(device, "jobs")
        assert job["record_id"] not in guard and log["record_id"] in guard

    async with Collector(_settings(tmp_path), REGISTRY) as run4:
        guard = _spooled(run4)
        assert job["record_id"] not in guard and log["record_id"] in guard
