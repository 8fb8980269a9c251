"""Site roll-ups and anonymous benchmarks on the real stack: a site's day is its printers'
days summed; a model's cohort is published once at least k (5) sites are in, without any
site or device identity, and never for fewer sites."""

from __future__ import annotations

import statistics
import uuid
from pathlib import Path
from typing import Any

from stream_harness import Outputs, Worker, produce, settled
from stream_scenarios import Printer

from deploy.settings import StackSettings
from schemas import ANONYMOUS, SchemaRegistry
from common.kafka.topics import SITE_UTILISATION

DAY_MS = 86_400_000
T0 = 1_748_736_000_000  # 2025-06-01T00:00:00Z
REGISTRY = SchemaRegistry.load_default()


def _printer_day(p: Printer, model: str, printing_h: int) -> list[tuple[str, dict[str, Any]]]:
    """Identity, then a day (and a minute) of heartbeats a minute apart: printing for the
    first `printing_h` hours, idle after."""
    beats = [p.heartbeat(t, activity="PRINTING" if t < T0 + printing_h * 3_600_000 else "IDLE", layers_done=1 + i)
             for i, t in enumerate(range(T0, T0 + DAY_MS + 60_001, 60_000))]
    return [p.identity(T0, firmware="5.8.2", model=model), *beats]


async def test_site_days_and_benchmarks_of_five_sites(stack: StackSettings, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:6]
    # Five sites with two M0P44A printers each (one printing 2, 4, 6, 8, 10 h, one idle),
    # four sites with one 4WY25A printer: a cohort too small to publish.
    sites = {f"site-{run}-{i}": ("M0P44A", [2 * (i + 1), 0]) for i in range(5)}
    sites |= {f"site-{run}-small-{i}": ("4WY25A", [5]) for i in range(4)}
    records = []
    for site, (model, hours) in sites.items():
        for h in hours:
            records += _printer_day(Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0), model, h)
    worker = Worker(stack.kafka_bootstrap, f"bench-{run}", tmp_path, PRINTFLEET_WORKER_START_AT="latest",
                    PRINTFLEET_WORKER_HEARTBEAT_INTERVAL_S="60").start()
    try:
        await worker.ready()
        await settled([worker])
        async with Outputs(stack.kafka_bootstrap, "", extra_topics=(SITE_UTILISATION,)) as out:
            await produce(stack.kafka_bootstrap, records)

            def site_days(o: Outputs) -> dict[str, dict[str, Any]]:
                return {r["site_id"]: r for r in o.topic(SITE_UTILISATION)
                        if r["site_id"] in sites and (r["window_start"], r["window_end"]) == (T0, T0 + DAY_MS)}
            await out.until(lambda o: len(site_days(o)) == len(sites) and any(
                b["model_number"] == "M0P44A" and b["window_start"] == T0 and b["site_count"] == 5 for b in o.of("benchmark")),
                worker, timeout_s=180)
            await out.settle()
    finally:
        await worker.stop()

    days = site_days(out)
    for i in range(5):  # two printers, one printing 2(i+1) h of 24: the site printed that over 48 h
        day = days[f"site-{run}-{i}"]
        assert day["device_id"] == "" and day["printing_s"] == 2 * (i + 1) * 3600
        assert abs(day["utilisation_pct"] - 100 * 2 * (i + 1) / 48) < 1e-4  # an Avro float
    ours = [b for b in out.of("benchmark") if b["window_start"] == T0 and b["model_number"] in ("M0P44A", "4WY25A")]
    assert ours and all(b["model_number"] == "M0P44A" for b in ours)  # 4 sites: never published
    newest = ours[-1]
    assert newest["site_count"] == 5 and newest["device_count"] == 10
    assert (newest["site_id"], newest["device_id"]) == (ANONYMOUS, ANONYMOUS)
    site_pcts = [100 * 2 * (i + 1) / 48 for i in range(5)]
    assert abs(newest["utilisation_p50_pct"] - statistics.median(site_pcts)) < 1e-3
    assert all(b["site_count"] >= 5 for b in ours)
    text = str(ours)
    assert not any(site in text for site in sites)  # no site identity anywhere in the record
