"""Alert rules on the real stack: `printfleet worker` against scripted printer scenarios;
each alert raises and clears once, with the right severity and parts, and a printer that
repeats one event 1,000 times gives one alert, not a storm."""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from stream_harness import Outputs, Worker, produce
from stream_scenarios import (
    HOUR_MS, Printer, agents_run_low, cleaning_roll_wear, event_storm, filter_and_lamp, non_genuine_material,
    printhead_wear, slow_layers,
)

from common.kafka.topics import CATALOGUE
from deploy.settings import StackSettings
from streams.advisories import Release, sign

T0 = 1_748_736_000_000  # 2025-06-01T00:00:00Z


def _lifecycles(alerts: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The alert records of one dedup key, one per record id (a repeat is not news)."""
    seen: dict[str, dict[str, Any]] = {}
    for a in alerts:
        if a["dedup_key"] == key:
            seen.setdefault(a["record_id"], a)
    return sorted(seen.values(), key=lambda a: (a["event_time"], ["RAISED", "UPDATED", "CLEARED"].index(a["lifecycle"])))


def _steps(records: list[dict[str, Any]]) -> list[str]:
    return [r["lifecycle"] for r in records]


async def test_rules_raise_and_clear_once_without_storms(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    storm, roll, layers = (Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0) for _ in range(3))
    key = Ed25519PrivateKey.generate()
    (tmp_path / "release.pub").write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    good = sign(Release("M0P44A", "FIRMWARE", "5.9.0", T0, "Fixes lamp control", severity="WARNING"), key)
    forged = Release("M0P44A", "FIRMWARE", "6.0.0", T0, "Not from the maker", signature=good.signature)
    # What the printer reported about itself before the scenario: its printheads (so an
    # error knows which part to bring) and its firmware. Records of different kinds come
    # on different topics, so they go first and the scenario waits for them.
    storm_steps = event_storm(storm, 1000)
    context = [storm_steps[0], storm.identity(T0, firmware="5.8.2")]
    records = [*storm_steps[1:], *cleaning_roll_wear(roll), *slow_layers(layers, seed=4), storm.heartbeat(T0 + 2_000_000)]
    worker = Worker(stack.kafka_bootstrap, f"alerts-{site}", tmp_path, PRINTFLEET_WORKER_START_AT="latest",
                    PRINTFLEET_WORKER_RELEASE_KEY_FILE=str(tmp_path / "release.pub")).start()
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            await produce(stack.kafka_bootstrap, context)
            await out.until(lambda o: any(a["rule_id"] == "printhead-life" for a in o.of("alert")), worker)
            await produce(stack.kafka_bootstrap, records, raw=[
                # The registry's one catalogue topic; keys of this test's own.
                (CATALOGUE, f"good-{site}".encode(), json.dumps(asdict(good)).encode()),
                (CATALOGUE, f"forged-{site}".encode(), json.dumps(asdict(forged)).encode()),
            ])
            def done(o: Outputs) -> bool:
                keys = Counter(a["dedup_key"] for a in o.of("alert") if a["lifecycle"] == "CLEARED")
                return (keys[f"system-event:{storm.device_id}:0057-0001-0053"] >= 1
                        and keys[f"cleaning-roll:{roll.device_id}"] >= 1
                        and keys[f"layer-duration:{layers.device_id}"] >= 1 and bool(o.of("update_advisory")))
            await out.until(done, worker)
            alerts = out.of("alert")

        # 1,000 identical printhead errors: one alert, raised once, a few counted updates, cleared
        # once when the operator clears the error; severity and the printhead's part number.
        life = _lifecycles(alerts, f"system-event:{storm.device_id}:0057-0001-0053")
        assert _steps(life)[0] == "RAISED" and _steps(life)[-1] == "CLEARED", _steps(life)
        assert _steps(life).count("RAISED") == 1 and _steps(life).count("CLEARED") == 1
        assert _steps(life).count("UPDATED") <= 3
        assert life[-1]["occurrences"] == 1000
        assert {a["severity"] for a in life} == {"ERROR"}
        assert life[0]["recommended_parts"] and life[0]["recommended_parts"][0]["part_number"]
        assert len([a for a in alerts if a["device_id"] == storm.device_id]) < 12  # no storm

        # Cleaning roll: predicted end of life raised before it was reached, with the date;
        # the consumable alert escalates to ERROR near the end; all clear on replacement.
        wear = _lifecycles(alerts, f"predicted-wear:{roll.device_id}:cleaning-roll")
        assert _steps(wear)[0] == "RAISED" and _steps(wear).count("RAISED") == 1 and _steps(wear)[-1] == "CLEARED"
        reached_95 = T0 + 30 * HOUR_MS  # 50 % + 1.5 %/h reaches 95 % after 30 h
        assert wear[0]["event_time"] < reached_95
        assert abs(wear[0]["predicted_failure_at"] - reached_95) < 4 * HOUR_MS
        assert wear[0]["recommended_parts"][0]["part_number"] == "3ED60A"
        roll_life = _lifecycles(alerts, f"cleaning-roll:{roll.device_id}")
        assert _steps(roll_life)[0] == "RAISED" and _steps(roll_life).count("CLEARED") == 1
        assert roll_life[0]["severity"] == "WARNING" and "ERROR" in {a["severity"] for a in roll_life}
        assert roll_life[-1]["cleared_at"] == T0 + 34 * HOUR_MS

        # Layers suddenly 2.6x slower: an anomaly, raised once, cleared when they recover.
        anomaly = _lifecycles(alerts, f"layer-duration:{layers.device_id}")
        assert _steps(anomaly) == ["RAISED", "CLEARED"], _steps(anomaly)
        assert 0.5 <= anomaly[0]["confidence"] <= 1.0

        # Advisories: the maker-signed newer firmware is advised once; the forged one never.
        advised = out.of("update_advisory")
        assert [(a["device_id"], a["available_version"]) for a in advised] == [(storm.device_id, "5.9.0")]
    finally:
        await worker.stop()


async def test_offline_raises_on_silence_and_clears_when_back(stack: StackSettings, tmp_path: Path) -> None:
    """The timer, not an arriving record, notices that a printer went silent."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    quiet, busy = (Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0) for _ in range(2))
    worker = Worker(stack.kafka_bootstrap, f"offline-{site}", tmp_path, PRINTFLEET_WORKER_START_AT="latest",
                    PRINTFLEET_WORKER_TICK_EVERY_S="1").start()
    key = f"printer-offline:{quiet.device_id}"
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            # both report for 5 minutes; then only `busy` for 5 minutes
            await produce(stack.kafka_bootstrap, [p.heartbeat(T0 + i * 10_000) for i in range(30) for p in (quiet, busy)])
            await produce(stack.kafka_bootstrap, [busy.heartbeat(T0 + 300_000 + i * 10_000) for i in range(30)])
            await out.until(lambda o: any(a["dedup_key"] == key for a in o.of("alert")), worker, timeout_s=60)
            await produce(stack.kafka_bootstrap, [p.heartbeat(T0 + 600_000 + i * 10_000) for i in range(6) for p in (quiet, busy)])
            await out.until(lambda o: "CLEARED" in _steps(_lifecycles(o.of("alert"), key)), worker, timeout_s=60)
            life = _lifecycles(out.of("alert"), key)
            states = [s for s in out.of("fleet_state") if s["device_id"] == quiet.device_id]
        assert _steps(life) == ["RAISED", "CLEARED"]
        # offline from the last heartbeat + 3 intervals (30 s), back with the next heartbeat
        assert life[0]["raised_at"] == T0 + 290_000 + 30_000
        assert life[1]["cleared_at"] == T0 + 600_000
        episodes = [k for k, _ in itertools.groupby(s["status"] for s in states)]
        assert episodes == ["POWERED_ON", "UNREACHABLE", "POWERED_ON"]  # one offline episode
        assert states[-1]["status"] == "POWERED_ON" and states[-1]["firmware_release"] == ""
        # the printer that kept reporting was never taken for offline while it did (it may
        # be once phase 2 ended: nothing arrives until phase 3 is produced)
        assert not [a for a in out.of("alert") if a["device_id"] == busy.device_id and a["raised_at"] < T0 + 620_000]
    finally:
        await worker.stop()


async def test_consumable_rules_raise_and_clear_once(stack: StackSettings, tmp_path: Path) -> None:
    """Printhead life, warranty and agent notices; air filter; lamp hours; agent levels and
    expired cartridges; non-genuine material: each alert raises once, with its severity
    and parts, and clears once when the part is replaced."""
    site = f"site-{uuid.uuid4().hex[:8]}"
    head, counters, agents, unit = (Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0) for _ in range(4))
    scenarios = [*printhead_wear(head), *filter_and_lamp(counters), *agents_run_low(agents), *non_genuine_material(unit)]
    expected = {  # dedup key -> (severity when raised, highest severity, part numbers)
        f"printhead-life:{head.device_id}:0": ("WARNING", "WARNING", ["3ED59A"]),
        f"printhead-warranty:{head.device_id}:0": ("INFO", "INFO", ["3ED59A"]),
        f"supplies:{head.device_id}:printhead-0-non-genuine": ("WARNING", "WARNING", []),
        f"air-filter:{counters.device_id}": ("WARNING", "ERROR", []),
        f"lamp-hours:{counters.device_id}": ("WARNING", "WARNING", []),
        f"agent-level:{agents.device_id}:FUSING": ("WARNING", "ERROR", []),
        f"supplies:{agents.device_id}:agent-DETAILING-expired": ("WARNING", "WARNING", []),
        f"supplies:{unit.device_id}:material-non-genuine": ("WARNING", "WARNING", []),
    }
    worker = Worker(stack.kafka_bootstrap, f"consumables-{site}", tmp_path, PRINTFLEET_WORKER_START_AT="latest").start()
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            await produce(stack.kafka_bootstrap, scenarios)

            def cleared(o: Outputs) -> set[str]:
                return {a["dedup_key"] for a in o.of("alert") if a["lifecycle"] == "CLEARED"}
            await out.until(lambda o: set(expected) <= cleared(o), worker)
            await out.settle(quiet_s=2.0)  # nothing raised again after the clear
            alerts = out.of("alert")
    finally:
        await worker.stop()
    for key, (raised_as, worst, parts) in expected.items():
        life = _lifecycles(alerts, key)
        steps = _steps(life)
        assert steps[0] == "RAISED" and steps[-1] == "CLEARED", (key, steps)
        assert steps.count("RAISED") == 1 and steps.count("CLEARED") == 1, (key, steps)
        assert life[0]["severity"] == raised_as, (key, life[0]["severity"])
        assert max((a["severity"] for a in life), key=["INFO", "WARNING", "ERROR", "CRITICAL"].index) == worst, key
        assert [p["part_number"] for p in life[0]["recommended_parts"]] == parts, key
    # The printhead's end of life was also predicted from its usage trend, before 90 %.
    wear = _lifecycles(alerts, f"predicted-wear:{head.device_id}:printhead-0")
    assert _steps(wear)[0] == "RAISED" and _steps(wear)[-1] == "CLEARED", _steps(wear)
    assert wear[0]["event_time"] < _lifecycles(alerts, f"printhead-life:{head.device_id}:0")[0]["event_time"]
