"""Predictive maintenance: RUL warns before the threshold; layer-duration anomalies."""

from __future__ import annotations

import random
from typing import Any

import pytest
from streams_sim import HOUR_MS, START_MS, encode_all, run

from producers.simulator import Fleet, SimulatorSettings
from streams.alert_device import AlertDeviceSettings, DeviceAlertState, process
from streams.alert_rules import RuleSettings
from streams.maintenance import (
    LayerHistory,
    TrendSeries,
    add_reading,
    fit_line,
    observe_layer_duration,
    predict,
)

DAY = 86_400_000


def test_fit_line_recovers_a_line() -> None:
    pts = [(1_000_000 + i * 3_600_000, 5.0 + 0.5 * i) for i in range(10)]
    slope, intercept, r2 = fit_line(pts)
    assert slope * 3_600_000 == pytest.approx(0.5)
    assert slope * pts[3][0] + intercept == pytest.approx(6.5)
    assert r2 == pytest.approx(1.0)


def test_prediction_of_a_noisy_trend_comes_before_the_crossing() -> None:
    rng = random.Random(3)
    series = TrendSeries(rising=True)
    for h in range(48):  # 4 %/day with noise, from 60 %
        series = add_reading(series, h * HOUR_MS, 60.0 + 4.0 * h / 24 + rng.uniform(-0.3, 0.3))
    p = predict(series, 95.0, 47 * HOUR_MS)
    assert p is not None and not p.crossed and p.crossing_at_ms is not None
    true_crossing = (95.0 - 60.0) / 4.0 * DAY
    assert abs(p.crossing_at_ms - true_crossing) < 0.1 * true_crossing
    assert p.rate_per_day == pytest.approx(4.0, rel=0.1) and 0.5 < p.confidence <= 1.0


def test_series_restarts_when_the_item_is_replaced_and_ignores_replays() -> None:
    s = TrendSeries(rising=True)
    for h in range(10):
        s = add_reading(s, h * HOUR_MS, 50.0 + h, item_id="roll-1")
    assert add_reading(s, 5 * HOUR_MS, 99.0, item_id="roll-1") is s  # stale: ignored
    assert add_reading(s, 11 * HOUR_MS, 0.5, item_id="roll-1").points == [(11 * HOUR_MS, 0.5)]  # drop: new roll
    assert add_reading(s, 11 * HOUR_MS, 61.0, item_id="roll-2").points == [(11 * HOUR_MS, 61.0)]  # new id
    falling = add_reading(add_reading(TrendSeries(rising=False), 0, 30.0), HOUR_MS, 100.0)
    assert falling.points == [(HOUR_MS, 100.0)]  # a level that jumps up: new cartridge
    assert TrendSeries.from_dict(s.to_dict()) == s


def test_simulated_cleaning_rolls_are_predicted_before_they_reach_the_limit() -> None:
    cfg = AlertDeviceSettings(rules=RuleSettings(cleaning_roll_warn_pct=80.0, cleaning_roll_end_pct=80.0))
    fleet = Fleet(SimulatorSettings(printers=3, seed=11, start_ms=START_MS))
    states: dict[str, DeviceAlertState] = {}
    alerts: dict[str, list[dict[str, Any]]] = {}
    crossings: dict[str, list[int]] = {}
    previous: dict[str, float] = {}
    for h in range(14 * 24):
        t = START_MS + h * HOUR_MS
        fleet.advance_to(t)
        for pid in fleet.printer_ids:
            roll = fleet.read(pid, "consumables")["cleaning_roll"]
            record = {"record_id": f"{pid}-{t}", "site_id": "s", "device_id": pid, "event_time": t,
                      "part_number": roll["part_number"], "status": roll["status"], "usage_pct": roll["usage_pct"]}
            if previous.get(pid, 100.0) < 80.0 <= roll["usage_pct"]:
                crossings.setdefault(pid, []).append(t)
            previous[pid] = roll["usage_pct"]
            states[pid], out = process(states.get(pid) or DeviceAlertState(), "cleaning_roll", record, cfg)
            alerts.setdefault(pid, []).extend(r for r in out if r["rule_id"] == "predicted-wear")
    checked = 0
    for pid, times in crossings.items():
        for crossing in times:
            if crossing - START_MS < 3 * DAY:
                continue  # the series had no time to learn the trend
            raised = [a for a in alerts[pid] if a["lifecycle"] == "RAISED" and a["event_time"] < crossing]
            assert raised, f"{pid}: no warning before the crossing at {crossing}"
            latest = max((a for a in alerts[pid] if a["event_time"] < crossing), key=lambda a: a["event_time"])
            assert latest["lifecycle"] in ("RAISED", "UPDATED")
            assert crossing - raised[-1]["event_time"] >= DAY  # warned at least a day ahead
            assert abs(latest["predicted_failure_at"] - crossing) < 1.5 * DAY
            assert latest["recommended_parts"][0]["part_number"] == "F9K09A"
            assert latest["notify_service"] is True
            assert cfg.rules.rul_min_confidence <= raised[-1]["confidence"] <= 1.0
            checked += 1
    assert checked >= 2
    encode_all("alert", [a for out in alerts.values() for a in out])


def test_predicted_wear_alert_carries_the_fit_quality_as_confidence() -> None:
    """The alert's confidence is the prediction's: r^2 x min(1, points / 8) x
    (0.5 + 0.5 x min(1, span / lead)); a noisier trend (lower r^2) is less sure."""
    def raise_on(noise: float) -> tuple[dict[str, Any], float]:
        rng = random.Random(7)
        state = DeviceAlertState()
        for h in range(96):  # hourly readings, 10 %/day from 30 %: the limit is ~6 days out
            t = START_MS + h * HOUR_MS
            pct = 30.0 + 10.0 * h / 24 + rng.uniform(-noise, noise)  # noise below a "replaced" drop
            record = {"record_id": f"r{h}", "site_id": "s", "device_id": "d", "event_time": t,
                      "part_number": "F9K09A", "status": "OK", "usage_pct": pct}
            state, out = process(state, "cleaning_roll", record)
            wear = [r for r in out if r["rule_id"] == "predicted-wear" and r["lifecycle"] == "RAISED"]
            if wear:
                p = predict(state.series["cleaning-roll"], RuleSettings().cleaning_roll_end_pct, t)
                assert p is not None
                return wear[0], p.confidence
        raise AssertionError("no predicted-wear alert")

    clean, expected = raise_on(0.0)
    noisy, expected_noisy = raise_on(0.4)
    assert clean["confidence"] == pytest.approx(expected, abs=1e-4)
    assert noisy["confidence"] == pytest.approx(expected_noisy, abs=1e-4)
    assert clean["event_time"] == noisy["event_time"]  # the same moment, the same readings count
    assert RuleSettings().rul_min_confidence <= noisy["confidence"] < clean["confidence"] <= 1.0
    assert clean["occurrences"] == 1 and clean["predicted_failure_at"] is not None
    encode_all("alert", [clean, noisy])


def test_layer_anomaly_confidence_grows_with_the_distance_from_the_history() -> None:
    def raised(slow_s: float) -> dict[str, Any]:
        rng = random.Random(1)
        state, out = DeviceAlertState(), []
        values = [10.0 + rng.uniform(-0.25, 0.25) for _ in range(60)] + [slow_s] * 3
        for i, v in enumerate(values):
            hb = {"record_id": f"hb{i}", "site_id": "s", "device_id": "d", "event_time": i * 30_000,
                  "status": "POWERED_ON", "activity": "PRINTING", "current_job_id": "J1",
                  "recent_layer_duration_s": v}
            state, records = process(state, "heartbeat", hb)
            out += records
        [alert] = [r for r in out if r["rule_id"] == "layer-duration"]
        return alert

    # z about 3.6, 4.6 and far beyond 7; confidence is 0.5 at the threshold (3.5), 1.0 at twice it
    just, a_bit, far = raised(10.7), raised(10.9), raised(30.0)
    assert 0.5 <= just["confidence"] < 0.55 < a_bit["confidence"] < far["confidence"] == 1.0
    assert "robust z-score" in a_bit["summary"]
    encode_all("alert", [just, a_bit, far])


def _layers(history: LayerHistory, t0: int, values: list[float], job: str = "J1") -> tuple[LayerHistory, list[bool]]:
    changes = []
    for i, v in enumerate(values):
        history, verdict = observe_layer_duration(history, t0 + i * 30_000, v, job)
        changes.append(bool(verdict and verdict.changed))
    return history, changes


def test_slow_layers_are_anomalous_and_recover() -> None:
    rng = random.Random(1)
    normal = [10.0 + rng.uniform(-0.25, 0.25) for _ in range(60)]
    h, changes = _layers(LayerHistory(), 0, normal)
    assert not any(changes) and not h.anomalous
    h, changes = _layers(h, 60 * 30_000, [13.5, 13.8, 13.6, 13.9])
    assert changes == [False, False, True, False] and h.anomalous  # three in a row raise it
    h, changes = _layers(h, 64 * 30_000, [10.1, 9.9, 10.0])
    assert changes[-1] and not h.anomalous
    assert LayerHistory.from_dict(h.to_dict()) == h


def test_a_new_job_starts_a_new_baseline() -> None:
    h, _ = _layers(LayerHistory(), 0, [10.0 + 0.01 * (i % 7) for i in range(40)])
    h, changes = _layers(h, 40 * 30_000, [12.5] * 40, job="J2")  # slower print mode
    assert not any(changes) and h.job_id == "J2"


def test_no_layer_anomaly_alerts_on_a_normal_simulated_day() -> None:
    sim = run()
    states: dict[str, DeviceAlertState] = {}
    out = []
    for kind, record in sim.records:
        if kind == "heartbeat":
            state = states.get(record["device_id"]) or DeviceAlertState()
            states[record["device_id"]], records = process(state, kind, record)
            out += records
    assert [r for r in out if r["rule_id"] == "layer-duration"] == []
