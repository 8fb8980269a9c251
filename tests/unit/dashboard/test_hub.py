"""The pages' event streams: each site's changes go to that site's streams only, and a
stream that does not keep up is dropped instead of holding the feed or growing."""

from __future__ import annotations

import json

from dashboard.feed import Hub
from dashboard.server import bearer, consumables


async def test_a_change_goes_only_to_the_streams_of_its_site() -> None:
    hub = Hub(queue_max=10)
    a, b = hub.subscribe("s1"), hub.subscribe("s2")
    hub.publish("s1", "printer", {"device_id": "p1", "site_id": "s1"})
    assert a.queue.qsize() == 1 and b.queue.qsize() == 0
    event, data = a.queue.get_nowait()
    assert event == "printer" and json.loads(data)["device_id"] == "p1"


async def test_a_full_queue_drops_its_stream_only_and_publish_never_waits() -> None:
    hub = Hub(queue_max=2)
    slow, fast = hub.subscribe("s1"), hub.subscribe("s1")
    for i in range(3):
        hub.publish("s1", "printer", {"n": i})
        fast.queue.get_nowait()
    assert slow.dropped and not fast.dropped
    assert slow.queue.qsize() == 2 and hub.dropped_total == 1
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
    assert hub.connections == 0


async def test_close_all_ends_every_stream() -> None:
    hub = Hub(queue_max=1)
    waiting, full = hub.subscribe("s1"), hub.subscribe("s2")
    full.queue.put_nowait(("printer", "{}"))
    hub.close_all()
    assert waiting.dropped and full.dropped and waiting.queue.qsize() == 1


def test_the_token_comes_from_a_bearer_header_only_when_it_says_bearer() -> None:
    class Request:
        def __init__(self, headers: dict[str, str], cookies: dict[str, str]) -> None:
            self.headers, self.cookies = headers, cookies

    assert bearer(Request({"Authorization": "Bearer abc"}, {}))  == "abc"  # type: ignore[arg-type]
    assert bearer(Request({"Authorization": "Basic abc"}, {"printfleet_session": "x"})) == ""  # type: ignore[arg-type]
    assert bearer(Request({}, {"printfleet_session": "x"})) == "x"  # type: ignore[arg-type]


def test_consumables_get_the_predicted_end_of_life_of_their_open_wear_alert() -> None:
    rows = [{"kind": "printhead", "item": "printhead-2", "remaining_pct": 30.0},
            {"kind": "agent", "item": "agent-FUSING", "remaining_pct": 50.0},
            {"kind": "cleaning-roll", "item": "cleaning-roll", "remaining_pct": 10.0}]
    alerts = [{"rule_id": "predicted-wear", "dedup_key": "predicted-wear:p1:printhead-2",
               "predicted_failure_at": 123, "confidence": 0.8},
              {"rule_id": "predicted-wear", "dedup_key": "predicted-wear:p9:cleaning-roll",
               "predicted_failure_at": 999, "confidence": 0.9}]
    out = {c["item"]: c for c in consumables(rows, alerts, "p1")}
    assert out["printhead-2"]["predicted_end_of_life_at"] == 123 and out["printhead-2"]["prediction_confidence"] == 0.8
    assert out["printhead-2"]["description"] == "Printhead in slot 2"
    assert out["agent-FUSING"]["description"] == "Fusing agent cartridge"
    assert out["cleaning-roll"]["predicted_end_of_life_at"] is None  # another printer's alert
