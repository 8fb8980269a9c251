"""The stream worker on the real stack, fed a simulated fleet: fleet state and ETA, KPIs
equal to the simulator's ground truth, restarts and a second worker that change nothing,
duplicate, late and undecodable records."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from stream_harness import Outputs, Worker, produce, settled
from stream_scenarios import Printer

from deploy.settings import StackSettings
from producers.simulator.replay import Replay, new_fleet, replay
from schemas import SchemaRegistry
from common.kafka import deadletter
from common.kafka.topics import topic_for
from streams.timeline import BUCKETS, bucket_of

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START_MS = 1_741_910_400_000  # 2025-03-14T00:00:00Z
SEED = 11
REGISTRY = SchemaRegistry.load_default()
# A simulated day read at 60 s heartbeats; a backlog is read topic by topic, so other
# kinds may come hours after the heartbeats of their time: lateness covers the whole run.
ENV = {"PRINTFLEET_WORKER_START_AT": "latest", "PRINTFLEET_WORKER_HEARTBEAT_INTERVAL_S": "60",
       "PRINTFLEET_WORKER_ALLOWED_LATENESS_S": "172800", "PRINTFLEET_WORKER_STATUS_EVERY_S": "1"}


def _day(site: str, printers: int = 3, hours: int = 26) -> Replay:
    return replay(new_fleet(printers, SEED, START_MS), REGISTRY, duration_ms=hours * HOUR_MS, site_id=site, heartbeat_s=60)


def _newest(records: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The last record per key in topic order (re-emitted windows replace earlier ones)."""
    return {tuple(r[k] for k in key): r for r in records}


def _day_windows(out: Outputs) -> dict[str, dict[str, Any]]:
    day = _newest(out.of("utilisation"), "device_id", "window_start", "window_end")
    return {d: r for (d, s, e), r in day.items() if (s, e) == (START_MS, START_MS + DAY_MS)}


def _dense_truth(printers: int) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """Seconds per state bucket in the first day from a 10 s status trace of the same fleet,
    and the number of state changes (each may be off by one 60 s heartbeat)."""
    fleet = new_fleet(printers, SEED, START_MS)
    seconds: dict[str, Counter[str]] = {p: Counter() for p in fleet.printer_ids}
    changes = dict.fromkeys(fleet.printer_ids, 0)
    last: dict[str, str] = {}
    for t in range(START_MS, START_MS + DAY_MS, 10_000):
        fleet.advance_to(t)
        for p in fleet.printer_ids:
            s = fleet.read(p, "status")
            b = bucket_of(s["status"], s["activity"])
            seconds[p][b] += 10
            changes[p] += last.get(p, b) != b
            last[p] = b
    return seconds, changes


async def test_fleet_state_eta_and_kpis_match_the_simulator(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    sim = _day(site)
    worker = Worker(stack.kafka_bootstrap, f"day-{site}", tmp_path, **ENV).start()
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            sent = await produce(stack.kafka_bootstrap, sim.records)
            last_beat = {d: sim.of("heartbeat", d)[-1]["event_time"] for d in sim.device_ids.values()}

            def done(o: Outputs) -> bool:
                # every record applied (each kind comes on its own topic, in no order among
                # them), the day closed, and the fleet view at most one refresh behind
                states = _newest(o.of("fleet_state"), "device_id")
                return worker.status().get("applied", 0) >= sent and len(_day_windows(o)) == len(last_beat) and all(
                    (d,) in states and states[(d,)]["last_heartbeat_at"] >= t - 300_000 for d, t in last_beat.items())
            await out.until(done, worker, timeout_s=240)
            await out.settle()  # what the last records made
    finally:
        await worker.stop()

    # Fleet state: every record shows the heartbeat it was made from; it changes with every
    # change of state, so no state the printer was in is missed; firmware and model show
    # once the identity record is read (another topic: in a backlog it may come later).
    beats = {(hb["device_id"], hb["event_time"]): hb for hb in sim.of("heartbeat")}
    for s in out.of("fleet_state"):
        hb = beats[(s["device_id"], s["last_heartbeat_at"])]
        assert (s["status"], s["activity"], s["pending_job_count"]) == (hb["status"], hb["activity"], hb["pending_job_count"])
    newest = _newest(out.of("fleet_state"), "device_id")
    for r in sim.of("device_identity"):
        s = newest[(r["device_id"],)]
        assert (s["firmware_release"], s["model_number"], s["printer_name"]) == (r["firmware_release"], r["model_number"], r["printer_name"])
    for device in sim.device_ids.values():
        shown = {(s["status"], s["activity"]) for s in out.of("fleet_state") if s["device_id"] == device}
        lived = {(hb["status"], hb["activity"]) for hb in sim.of("heartbeat", device)}
        assert shown == lived

    # ETA at half the layers within 10 % of the true remaining print time.
    ends = {r["job_id"]: r["layers"][-1]["ended_at"] for r in sim.of("job") if r["completion_status"] == "COOLING"}
    warmed = {hb["current_job_id"] for hb in sim.of("heartbeat") if hb["activity"] == "WARMING_UP"}
    judged = {}
    for s in out.of("fleet_state"):
        job = s["current_job_id"]
        if (job in ends and job in warmed and job not in judged and s["activity"] == "PRINTING"
                and s["layers_done"] * 2 >= s["layers_total"]):
            # measured at the heartbeat it shows (a record may be re-emitted later, e.g.
            # when an alert opens, with the same estimate of the same moment)
            at = s["last_heartbeat_at"]
            judged[job] = ((s["estimated_completion_at"] - at) / 1000, (ends[job] - at) / 1000)
    assert len(judged) >= 3, judged
    for job, (estimate, truth) in judged.items():
        assert abs(estimate - truth) <= 0.10 * truth, (job, estimate, truth)

    # Day KPIs equal those computed from the simulator's own state and counters.
    dense, changes = _dense_truth(len(sim.device_ids))
    days = _day_windows(out)
    for pid, device in sim.device_ids.items():
        day = days[device]
        ours = {b: day[f"{b}_s"] for b in BUCKETS}
        assert sum(ours.values()) == DAY_MS / 1000
        for b in BUCKETS:
            assert abs(ours[b] - dense[pid][b]) <= 60 * (changes[pid] + 1), (pid, b, ours, dense[pid])
        t0, t1 = sim.truth[START_MS][pid], sim.truth[START_MS + DAY_MS][pid]
        assert day["jobs_completed"] == t1["jobs_completed"] - t0["jobs_completed"]
        c0, c1 = sim.counters[START_MS][pid], sim.counters[START_MS + DAY_MS][pid]
        assert abs(day["material_consumed_kg"] - (c1["total_material_consumed_kg"] - c0["total_material_consumed_kg"])) < 1e-3
        assert abs(day["agent_consumed_cm3"] - (c1["total_agent_consumed_cm3"] - c0["total_agent_consumed_cm3"])) < 0.01
        assert abs(day["layers_printed"] - (c1["total_layers"] - c0["total_layers"])) <= 8
    assert not out.dead_letters


FAST = {"PRINTFLEET_WORKER_START_AT": "latest", "PRINTFLEET_WORKER_SESSION_TIMEOUT_S": "8",
        "PRINTFLEET_WORKER_STATUS_EVERY_S": "1", "PRINTFLEET_WORKER_CHECKPOINT_EVERY_S": "2"}


def _storm(printers: list[Printer], first: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` printhead errors per printer (one code each), numbered from `first`."""
    return [p.event(p.t0 + (first + i) * 1000, "0057-0001-0053", "ERROR", "printhead", first + i)
            for i in range(count) for p in printers]


def _cleared(out: Outputs) -> dict[str, int]:
    return {a["device_id"]: a["occurrences"] for a in out.of("alert") if a["lifecycle"] == "CLEARED"}


async def test_restarts_with_a_backlog_lose_nothing(stack: StackSettings, tmp_path: Path) -> None:
    """Regression for docs/findings.md: Faust skipped records that waited while a restarted
    worker restored its tables. Every event is counted exactly once across a crash
    (SIGKILL) and a graceful stop, with backlogs produced while the worker was down and
    while it was recovering; and every output reaches readers of committed data once
    (before transactions, the outputs since the last checkpoint were sent again)."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    printers = [Printer(site, f"dev-{uuid.uuid4().hex[:12]}", START_MS) for _ in range(8)]
    worker = Worker(stack.kafka_bootstrap, f"restart-{site}", tmp_path, **FAST).start()
    sent = 0
    try:
        async with Outputs(stack.kafka_bootstrap, site) as out:
            await worker.ready()
            sent += 150
            await produce(stack.kafka_bootstrap, _storm(printers, 0, 150))
            await out.until(lambda o: len({a["device_id"] for a in o.of("alert")}) == len(printers), worker)
            # Crash once the state was checkpointed at least once (a group that never committed
            # anything would restart from the latest offsets: nothing to recover).
            await out.until(lambda o: worker.status().get("applied", 0) >= 1200 and worker.status()["checkpoints"] > 0, worker)
            await worker.stop(signal.SIGKILL)  # a crash: state since the last checkpoint is gone
            for stop in (signal.SIGTERM, None):
                await produce(stack.kafka_bootstrap, _storm(printers, sent, 200))  # backlog while down
                worker.start()
                await produce(stack.kafka_bootstrap, _storm(printers, sent + 200, 200))  # while recovering
                sent += 400
                await worker.ready(times=worker.log.read_text().count("[^Worker]: Ready") + 1)
                if stop is not None:
                    await worker.stop(stop)
                    assert worker.proc is not None and worker.proc.returncode == 0, worker.tail()  # SIGTERM: a clean stop
            clear = [p.event(p.t0 + 10_000_000, "0001-0002-0001", "INFO", "system", 99_999) for p in printers]
            await produce(stack.kafka_bootstrap, clear)
            await out.until(lambda o: len(_cleared(o)) == len(printers), worker, timeout_s=120)
            await worker.stop()
    finally:
        await worker.stop()
    assert _cleared(out) == {p.device_id: sent for p in printers}, worker.tail()
    assert set(out.repeated_ids().values()) == {0}, out.repeated_ids()


async def test_a_new_group_restarted_before_its_first_record_reads_what_came_meanwhile(
    stack: StackSettings, tmp_path: Path
) -> None:
    """A new app id with `start_at=latest` begins at the end of every partition. A restart
    (or a rebalance) before any record was applied must go on from that beginning, not
    from the then latest offsets: what arrived while it was down would be skipped."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    printers = [Printer(site, f"dev-{uuid.uuid4().hex[:12]}", START_MS) for _ in range(6)]
    worker = Worker(stack.kafka_bootstrap, f"began-{site}", tmp_path, **FAST).start()
    try:
        await worker.ready()
        await worker.stop()  # no record was applied: the books hold only where reading began
        await produce(stack.kafka_bootstrap, _storm(printers, 0, 20))  # while it is down
        async with Outputs(stack.kafka_bootstrap, site) as out:
            worker.start()
            await worker.ready(times=2)
            await out.until(lambda o: worker.status().get("applied", 0) >= 120, worker, timeout_s=60)
        assert worker.status()["missing"] == 0
    finally:
        await worker.stop()


async def test_two_workers_share_the_partitions_and_agree_with_one(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    sim = _day(site, printers=6, hours=5)
    env = {**FAST, "PRINTFLEET_WORKER_HEARTBEAT_INTERVAL_S": "3600", "PRINTFLEET_WORKER_ALLOWED_LATENESS_S": "172800"}
    pair = [Worker(stack.kafka_bootstrap, f"pair-{site}", tmp_path, **env).start() for _ in range(2)]
    alone = Worker(stack.kafka_bootstrap, f"alone-{site}", tmp_path, **env).start()
    total = len(sim.records)
    try:
        for w in (*pair, alone):
            await w.ready()
        await settled(pair)
        async with Outputs(stack.kafka_bootstrap, site) as out:
            await produce(stack.kafka_bootstrap, sim.records)
            def applied(w: Worker) -> int:
                return w.status().get("applied", 0)
            await out.until(lambda o: sum(map(applied, pair)) >= total and applied(alone) >= total, alone, timeout_s=180)
            await out.settle()
        assert all(0 < applied(w) < total for w in pair), "the two workers did not share the partitions"
    finally:
        for w in (*pair, alone):
            await w.stop()
    # Outputs are ids of their content: equal results have equal record ids. Windows up to
    # the last heartbeat (later ones close by wall-clock timers, at different moments).
    last_beat = max(hb["event_time"] for hb in sim.of("heartbeat"))

    def final(app_id: str) -> tuple[set[str], set[str], set[str]]:
        windows = _newest([r for r in out.of("utilisation", app_id) if r["window_end"] <= last_beat],
                          "device_id", "window_start", "window_end")
        alerts = {a["record_id"] for a in out.of("alert", app_id)}
        # the fleet view: what it finally shows. Which heartbeat its newest record is from
        # depends on the order two topics were read in (a record is re-emitted when an alert
        # opens), so that only has to be within one refresh (5 min) of the last heartbeat.
        newest = _newest(out.of("fleet_state", app_id), "device_id").values()
        assert all(r["last_heartbeat_at"] >= last_beat - 300_000 for r in newest)
        shown = ("device_id", "model_number", "firmware_release", "open_alert_count")
        states = {str([r[k] for k in shown]) for r in newest}
        return {r["record_id"] for r in windows.values()}, alerts, states
    ours, theirs = final(f"pair-{site}"), final(f"alone-{site}")
    assert ours[0] and ours[1] and ours[2]
    assert ours == theirs


async def test_duplicate_late_and_undecodable_records(stack: StackSettings, tmp_path: Path) -> None:
    """A duplicate changes nothing, a record late within the bound counts once, one beyond
    it and one that does not decode go to the dead-letter topic with the reason and their
    origin; the worker goes on."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    p = Printer(site, f"dev-{uuid.uuid4().hex[:12]}", START_MS)
    beats = [p.heartbeat(START_MS + i * 10_000, activity="IDLE") for i in range(2 * 360 + 1)]  # 2 h idle
    worker = Worker(stack.kafka_bootstrap, f"late-{site}", tmp_path, **FAST).start()

    def hour(o: Outputs, start: int) -> list[dict[str, Any]]:
        return [r for r in o.of("utilisation") if (r["window_start"], r["window_end"]) == (start, start + HOUR_MS)]
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            await produce(stack.kafka_bootstrap, beats)
            await out.until(lambda o: len(hour(o, START_MS + HOUR_MS)) == 1, worker)
            await out.settle()
            before = len(out.of("utilisation"))
            # the second hour is closed but within the lateness (10 min): a printing
            # heartbeat for it updates it once; sent twice, and a duplicate of an idle one
            within = p.heartbeat(START_MS + HOUR_MS + 1_800_001, activity="PRINTING")
            beyond = p.heartbeat(START_MS + 1_800_001, activity="PRINTING")  # first hour: final
            # beats[300] is a repeat of a final hour's record, among the ids the printer's
            # state remembers (the last 512): recognised, not taken for a late one
            await produce(stack.kafka_bootstrap, [within, within, beats[300], beyond],
                          raw=[(topic_for("heartbeat"), p.device_id.encode(), b"\x00not avro")])
            await out.until(lambda o: len(o.dead_letters) >= 2 and len(hour(o, START_MS + HOUR_MS)) == 2, worker)
            await produce(stack.kafka_bootstrap, [p.heartbeat(START_MS + 2 * HOUR_MS + 10_000, activity="IDLE")])
            # the worker went on: everything after the bad record is applied
            await out.until(lambda o: worker.status().get("applied", 0) == len(beats) + 5, worker)
            await out.settle()
    finally:
        await worker.stop()
    first, second = hour(out, START_MS), hour(out, START_MS + HOUR_MS)
    assert len(first) == 1 and first[0]["printing_s"] == 0  # the record beyond the bound changed nothing
    assert len(second) == 2 and second[-1]["printing_s"] == 9.999  # once, not twice (from +1 ms to the next beat)
    assert len(out.of("utilisation")) == before + 1
    letters = [deadletter.read((k, v.encode()) for k, v in h.items()) for _, h in out.dead_letters]
    reasons = {h["origin.offset"]: h["reason"] for h in letters if h["origin.topic"] == topic_for("heartbeat")}
    assert all(h["component"] == "worker" for h in letters)
    assert sorted(r.split(":")[0] for r in reasons.values()) == ["NotSingleObjectError", "late"], reasons
    assert any(value == b"\x00not avro" for value, _ in out.dead_letters)
    assert worker.status()["repeats"] == 0  # duplicates are new offsets: recognised by content, not offset
