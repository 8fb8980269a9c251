"""ClickHouse users and rights, on the real local server: `printfleet query` needs only
SELECT (it creates nothing), and a sink run as a user without the rights it needs stops
at once with one line naming the user and the missing grant, without retrying.

The local server's users come from deploy/clickhouse.py: `default` (every right) and
`reader` (a read-only profile, SELECT on every database)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.settings import Secret
from deploy.clickhouse import READER_PASSWORD, READER_USER
from deploy.settings import StackSettings
from printfleet.cli import main
from schemas import SchemaRegistry
from sinks import migrations
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings
from sinks.errors import ClickHouseAccessDenied

PRINTFLEET = str(Path(sys.executable).parent / "printfleet")


@pytest.fixture
async def database(stack: StackSettings, unique: str) -> AsyncIterator[str]:
    """A database with every table, made by `default`, as the sink makes it."""
    name = f"access_{unique}"
    admin = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, database=name))
    await admin.start(create_database=True)
    await migrations.migrate(admin, migrations.plan(SchemaRegistry.load_default()))
    await admin.insert_rows("schema_migrations", ["id", "description", "checksum", "statements"],
                            [["probe", "a row the reader can see", "-", 0]])
    yield name
    await admin.command(f"DROP DATABASE IF EXISTS `{name}`")
    await admin.close()


def _reader_env(stack: StackSettings, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTFLEET_CLICKHOUSE_")}
    env.update(PRINTFLEET_CLICKHOUSE_URL=stack.clickhouse_url, PRINTFLEET_CLICKHOUSE_USER=READER_USER,
               PRINTFLEET_CLICKHOUSE_PASSWORD=READER_PASSWORD, PRINTFLEET_CLICKHOUSE_DATABASE=database)
    return env


def test_query_as_a_read_only_user_answers(
    stack: StackSettings, database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _reader_env(stack, database).items():
        monkeypatch.setenv(name, value)
    code = main(["query", "--sql", "SELECT description FROM schema_migrations WHERE id = 'probe'", "--format", "csv"])
    assert (code, capsys.readouterr().out) == (0, "description\na row the reader can see\n")
    # A named query too: its parameters are bound by the server, no setting is changed.
    # (The tables are empty: it answers no rows.)
    assert main(["query", "kpi-trend", "--format", "csv"]) == 0
    assert capsys.readouterr().err == ""


def test_query_as_the_reader_with_its_password_in_a_file(
    stack: StackSettings, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    secret = tmp_path / "password"
    secret.write_text(READER_PASSWORD + "\n")
    env = _reader_env(stack, database)
    del env["PRINTFLEET_CLICKHOUSE_PASSWORD"]
    done = subprocess.run(
        [PRINTFLEET, "query", "--sql", "SELECT currentUser()", "--format", "csv", "--clickhouse-password-file", str(secret)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "currentUser()\nreader\n", "")


def test_query_as_the_reader_may_not_write(
    stack: StackSettings, database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _reader_env(stack, database).items():
        monkeypatch.setenv(name, value)
    assert main(["query", "--sql", "INSERT INTO schema_migrations (id) VALUES ('x')"]) == 1
    assert capsys.readouterr().err == (
        f"printfleet query: ClickHouse user 'reader' lacks the grant INSERT(id) ON {database}.schema_migrations "
        "(INSERT INTO schema_migrations (id) VALUES ('x')); GRANT it, or use a user that has it\n")
    assert main(["query", "--sql", "SELECT 1 SETTINGS max_threads = 1"]) == 1
    assert capsys.readouterr().err == (
        "printfleet query: ClickHouse user 'reader' is read-only (its settings profile sets readonly), which forbids "
        "SELECT 1 SETTINGS max_threads = 1: Cannot modify 'max_threads' setting in readonly mode\n")


def test_query_of_a_database_that_does_not_exist_does_not_create_it(
    stack: StackSettings, unique: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRINTFLEET_CLICKHOUSE_URL", stack.clickhouse_url)
    assert main(["query", "alerts", "--clickhouse-database", f"missing_{unique}"]) == 1
    assert capsys.readouterr().err == (
        f"printfleet query: database 'missing_{unique}' does not exist on {stack.clickhouse_url}: "
        "the sink creates it (printfleet sink --migrate-only)\n")
    assert main(["query", "--sql", f"SELECT count() FROM system.databases WHERE name = 'missing_{unique}'",
                 "--format", "csv", "--clickhouse-database", "default"]) == 0
    assert capsys.readouterr().out == "count()\n0\n"


def test_a_wrong_password_is_one_line_and_not_retried(stack: StackSettings, database: str) -> None:
    env = {**_reader_env(stack, database), "PRINTFLEET_CLICKHOUSE_PASSWORD": "not-it"}
    done = subprocess.run([PRINTFLEET, "query", "alerts"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (
        f"printfleet query: ClickHouse user 'reader' could not log in (connecting to {stack.clickhouse_url}): "
        "wrong password, no such user, or not allowed from this address (ClickHouse error 516)\n")
    assert "not-it" not in done.stdout + done.stderr


def test_the_sink_as_the_read_only_user_stops_with_one_clear_line(stack: StackSettings, database: str) -> None:
    env = {**_reader_env(stack, database), "PRINTFLEET_SINK_RETRY_INITIAL_S": "5"}
    started = time.monotonic()
    done = subprocess.run([PRINTFLEET, "sink", "--status-every-s", "0", "--ops-port", "0"], env=env, capture_output=True, text=True,
                          timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr == (
        f"printfleet sink: ClickHouse user 'reader' lacks the grant CREATE DATABASE ON {database}.* "
        f"(CREATE DATABASE IF NOT EXISTS `{database}`); GRANT it, or use a user that has it\n")
    assert done.stdout == ""
    assert took < 30  # not retried: the first backoff alone would be 5 s, and it would never end


async def test_migrations_as_the_reader_raise_access_denied_not_retriable(stack: StackSettings, database: str) -> None:
    reader = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, READER_USER, database=database,
                                                 password=Secret(READER_PASSWORD)))
    await reader.start()
    try:
        with pytest.raises(ClickHouseAccessDenied) as caught:
            await migrations.migrate(reader, migrations.plan(SchemaRegistry.load_default()))
        assert not caught.value.retriable and caught.value.code == 497
        assert str(caught.value).startswith(
            f"ClickHouse user 'reader' lacks the grant CREATE TABLE ON {database}.schema_migrations")
    finally:
        await reader.close()
