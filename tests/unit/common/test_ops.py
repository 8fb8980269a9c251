"""common/ops.py without a listener: readiness results and their cache, the handlers'
answers (called with aiohttp's mocked requests), and the naming check."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from common.ops import OpsServer, OpsSettings, naming_problems


def _server(**settings: float) -> OpsServer:
    return OpsServer(OpsSettings(**settings), "test")  # type: ignore[arg-type]


async def test_ready_when_every_check_is_ok_and_names_each_failure() -> None:
    ops = _server()

    async def fine() -> str | None:
        return None

    async def away() -> str | None:
        return "unreachable: nothing listens on 127.0.0.1:1"

    ops.check("clickhouse", fine)
    ops.check("kafka", away)
    ready, checks = await ops.readiness()
    assert not ready
    assert checks == {"clickhouse": "ok", "kafka": "unreachable: nothing listens on 127.0.0.1:1"}


async def test_a_check_that_raises_or_hangs_is_a_named_failure_not_an_error() -> None:
    ops = _server(check_timeout_s=0.05)

    async def broken() -> str | None:
        raise RuntimeError("boom")

    async def hangs() -> str | None:
        await asyncio.sleep(10)
        return None

    ops.check("broken", broken)
    ops.check("slow", hangs)
    ready, checks = await ops.readiness()
    assert not ready
    assert "boom" in checks["broken"]
    assert checks["slow"] == "no answer within 0.05s"


async def test_results_are_cached_so_probes_do_not_hammer_the_dependency() -> None:
    ops = _server(cache_s=60)
    calls = 0

    async def counted() -> str | None:
        nonlocal calls
        calls += 1
        return None

    ops.check("kafka", counted)
    await asyncio.gather(*(ops.readiness() for _ in range(5)))
    await ops.readiness()
    assert calls == 1


async def test_a_stale_result_is_asked_again() -> None:
    ops = _server(cache_s=0)
    answers = ["unreachable", None]

    async def flips() -> str | None:
        return answers.pop(0)

    ops.check("kafka", flips)
    assert (await ops.readiness())[0] is False
    assert (await ops.readiness())[0] is True


async def test_readyz_answers_503_with_the_checks_then_200() -> None:
    ops = _server(cache_s=0)
    state: list[str | None] = ["unreachable: down"]

    async def kafka() -> str | None:
        return state[0]

    ops.check("kafka", kafka)
    request = make_mocked_request("GET", "/readyz")
    down = await ops.handle_ready(request)
    assert down.status == 503
    assert json.loads(down.text or "") == {"ready": False, "checks": {"kafka": "unreachable: down"}}
    state[0] = None
    up = await ops.handle_ready(request)
    assert up.status == 200
    assert json.loads(up.text or "") == {"ready": True, "checks": {"kafka": "ok"}}
    live = await ops.handle_live(make_mocked_request("GET", "/livez"))
    assert live.status == 200


async def test_metrics_reads_registered_families_at_each_scrape_after_the_hooks() -> None:
    ops = _server()
    counted = {"n": 0}
    ops.collect(lambda: [CounterMetricFamily("printfleet_test_records", "records", value=counted["n"])])
    lag = Gauge("printfleet_test_lag_records", "lag", registry=ops.registry)

    async def refresh() -> None:
        lag.set(7)

    ops.before_scrape(refresh)
    counted["n"] = 3
    response = await ops.handle_metrics(make_mocked_request("GET", "/metrics"))
    assert response.content_type == "text/plain"
    values = {s.name: s.value for f in text_string_to_metric_families(response.text or "") for s in f.samples}
    assert values == {"printfleet_test_records_total": 3.0, "printfleet_test_lag_records": 7.0}


def test_each_server_has_its_own_registry() -> None:
    a, b = _server(), _server()
    Counter("printfleet_test_things", "things", registry=a.registry)
    Counter("printfleet_test_things", "things", registry=b.registry)  # no duplicate: not shared
    assert a.registry is not b.registry


def test_a_negative_port_serves_nothing() -> None:
    assert not OpsSettings(port=-1).enabled
    assert OpsSettings(port=0).enabled


def test_naming_problems_finds_each_broken_convention() -> None:
    registry = CollectorRegistry()
    Counter("printfleet_gateway_batches", "ok", ["outcome"], registry=registry)
    Histogram("printfleet_gateway_batch_duration_seconds", "ok", registry=registry)
    Gauge("printfleet_gateway_depth", "no unit", registry=registry).set(1)
    Counter("gateway_things", "no prefix", registry=registry).inc()
    Counter("printfleet_gateway_acks", "per record", ["record_id"], registry=registry).labels("r1").inc()
    problems = naming_problems(registry, "gateway")
    assert len(problems) == 3
    assert any("printfleet_gateway_depth" in p and "unit" in p for p in problems)
    assert any("gateway_things" in p and "prefix" in p for p in problems)
    assert any("record_id" in p for p in problems)
