"""Words for people, and state dataclasses <-> plain dicts for Faust tables."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest

from streams.errors import StateDecodeError, StreamsError
from streams.ids import NAMESPACE, RecentIds, content_digest, derived_id
from streams.plain import PlainState, copied
from streams.words import duration_words, fleet_line, state_words


@pytest.mark.parametrize(("status", "activity", "words"), [
    ("POWERED_ON", "PRINTING", "Powered on, printing"),
    ("POWERED_ON", "COOLING_DOWN", "Powered on, cooling down"),
    ("POWERED_ON", "UNLOADING_BUILD_UNIT", "Powered on, unloading the build unit"),
    ("ERROR", "PAUSED", "Error, job paused"),
    ("SLEEPING", "IDLE", "Sleeping"),
    ("UNREACHABLE", "PRINTING", "Offline"),
    ("POWERED_ON", "UNKNOWN", "Powered on"),
    ("POWERED_ON", "LEVITATING", "Powered on, levitating"),  # a symbol from a newer schema
])
def test_state_words(status: str, activity: str, words: str) -> None:
    assert state_words(status, activity) == words


def test_durations_and_fleet_lines() -> None:
    assert [duration_words(s) for s in (5, 720, 8100, 3600, 97_200)] == ["5 s", "12 min", "2 h 15 min", "1 h", "1 d 3 h"]
    record = {"status": "POWERED_ON", "activity": "PRINTING", "layers_done": 1204, "layers_total": 4000,
              "estimated_remaining_s": 27_600.0, "pending_job_count": 2}
    assert fleet_line(record) == "Powered on, printing: layer 1,204 of 4,000, 7 h 40 min left, 2 jobs waiting"
    assert fleet_line({"status": "UNREACHABLE", "activity": "UNKNOWN", "pending_job_count": 0}) == "Offline"


@dataclass
class Inner(PlainState):
    points: list[tuple[int, float]] = field(default_factory=list)
    label: str | None = None


@dataclass
class Outer(PlainState):
    name: str = ""
    inner: Inner = field(default_factory=Inner)
    by_key: dict[str, Inner] = field(default_factory=dict)
    pairs: tuple[tuple[str, float], ...] = ()
    maybe: float | None = None


def test_nested_state_round_trips_through_json() -> None:
    value = Outer("x", Inner([(1, 2.5)], "a"), {"k": Inner([(3, 4.0)])}, (("FUSING", 1.5),), 7.0)
    assert Outer.from_dict(json.loads(json.dumps(value.to_dict()))) == value
    assert Outer.from_dict({"inner": {"points": [[1, 2]]}}).inner.points == [(1, 2.0)]  # ints are floats too


def test_to_json_is_the_json_of_to_dict_and_reads_back() -> None:
    value = Outer("x", Inner([(1, 2.5)], "a"), {"k": Inner([(3, 4.0)])}, (("FUSING", 1.5),), 7.0)
    assert json.loads(value.to_json()) == value.to_dict()  # checkpoints written either way read the same
    assert Outer.from_json(value.to_json()) == value
    assert Outer.from_json(json.dumps(value.to_dict()).encode()) == value
    with pytest.raises(StateDecodeError):
        Outer.from_json(b"{not json")
    with pytest.raises(StateDecodeError):
        Outer.from_json(b'{"name": 3}')


def test_a_printers_whole_state_round_trips_through_to_json() -> None:
    from streams import device
    from streams.device import DeviceState
    from streams_sim import run

    sim = run()
    device_id = next(iter(sim.device_ids.values()))
    state = DeviceState()
    kinds = set()
    for kind, record in sim.records:
        if record.get("device_id") == device_id and kind in ("heartbeat", "device_identity", "job", "usage_counters",
                                                            "agent_system", "system_event", "cleaning_roll"):
            state = device.apply(state, kind, record).state
            kinds.add(kind)
    assert len(kinds) > 3 and state.utilisation.heartbeats
    assert DeviceState.from_json(state.to_json()) == state


@dataclass(frozen=True, slots=True)
class Frozen(PlainState):
    a: int = 0
    items: list[int] = field(default_factory=list)


def test_copied_is_a_shallow_copy_with_changes_also_of_slotted_and_frozen_states() -> None:
    from streams.fleet_state import PrinterState

    state = PrinterState(status="PRINTING", layers_done=3)
    assert not hasattr(state, "__dict__")  # slotted: what copied must handle
    copy = copied(state, layers_done=5)
    assert (copy.status, copy.layers_done, state.layers_done) == ("PRINTING", 5, 3)
    assert copy.eta is state.eta  # shallow
    with pytest.raises(AttributeError):
        copied(state, no_such_field=1)
    frozen = Frozen(1, [2])
    assert copied(frozen, a=3) == Frozen(3, [2]) and frozen == Frozen(1, [2])
    assert copied(Outer("x", maybe=1.0), name="y") == Outer("y", maybe=1.0)  # and with a __dict__


@pytest.mark.parametrize("bad", [
    {"name": 3},
    {"inner": {"points": [[1, 2, 3]]}},
    {"inner": []},
    {"by_key": {"k": {"label": 5}}},
    {"maybe": "high"},
    {"inner": {"points": [["t", 1.0]]}},
])
def test_a_foreign_changelog_value_fails_loudly(bad: dict[str, object]) -> None:
    with pytest.raises(StateDecodeError) as info:
        Outer.from_dict(bad)
    assert isinstance(info.value, StreamsError) and info.value.retriable is False


def test_ids_are_deterministic_and_recent_ids_are_bounded() -> None:
    assert derived_id("a", 1) == derived_id("a", 1) != derived_id("a", 2)
    for parts in [("a", 1), ("fleet_state", "d" * 32, 1_764_000_000_000, "hb-1"), ("Ümlaut", None, 2.5), ()]:
        assert derived_id(*parts) == str(uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts)))
    assert content_digest({"record_id": "x", "v": 1}) == content_digest({"v": 1, "record_id": "y"})
    ids = RecentIds(capacity=3)
    for i in range(5):
        ids.add(f"r{i}")
    assert "r4" in ids and "r1" not in ids and len(ids.ids) == 3
    assert RecentIds.from_dict(ids.to_dict()) == ids
    restored = RecentIds.from_json(ids.to_json())  # the lookup set is not stored: built again
    assert restored == ids and b"_index" not in ids.to_json()
    assert "r2" in restored and "r1" not in restored
    restored.add("r5")
    assert "r5" in restored and "r2" not in restored and restored.ids == ids.ids[1:] + [restored.ids[-1]]


def test_malformed_records_raise_one_error_the_agents_can_dead_letter() -> None:
    from streams.device import DeviceState, apply
    from streams.errors import InvalidRecordError
    from streams.utilisation import UtilisationState
    from streams.utilisation import apply as apply_utilisation

    with pytest.raises(InvalidRecordError):  # fleet state: no event_time
        apply(DeviceState(), "heartbeat", {"record_id": "r"})
    with pytest.raises(InvalidRecordError):  # no record_id
        apply(DeviceState(), "heartbeat", {"event_time": 1, "site_id": "s", "device_id": "d"})
    with pytest.raises(InvalidRecordError):  # utilisation takes no device logs
        apply_utilisation(UtilisationState(), "device_log", {"record_id": "r", "event_time": 1})
    with pytest.raises(InvalidRecordError):  # alerts: a system event without its fields
        apply(DeviceState(), "system_event", {"record_id": "r", "site_id": "s", "device_id": "d", "event_time": 1})
