"""Integration tests run against the real Kafka broker and ClickHouse server of the stack
that `make test` (deploy/run-tests.sh) starts; its addresses come from PRINTFLEET_*."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from deploy.settings import StackSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> StackSettings:
    """The running stack; fails (never skips) when it is not up."""
    from deploy.clickhouse import ClickHouseServer
    from deploy.kafka import KafkaServer

    settings = StackSettings.from_env()

    async def check() -> tuple[bool, bool]:
        return await KafkaServer(settings).answers(), await ClickHouseServer(settings).answers()

    kafka_ok, clickhouse_ok = asyncio.run(check())
    if not (kafka_ok and clickhouse_ok):
        pytest.fail(
            f"the stack is not up (kafka {settings.kafka_bootstrap}: {kafka_ok}, "
            f"clickhouse {settings.clickhouse_url}: {clickhouse_ok}); run the tests with "
            "`make test`, or `printfleet stack up` first",
            pytrace=False,
        )
    return settings


@pytest.fixture
def unique() -> str:
    """A name part no other test or earlier run uses, for topics, groups and tables."""
    return uuid.uuid4().hex[:10]
