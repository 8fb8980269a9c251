"""The `printfleet` command's answers to usage and configuration mistakes: one line on
stderr naming the problem, no traceback, exit 2. And the top-level flags (--version,
-v after the command, bench --help). No Kafka or ClickHouse needed: every case here
fails (or finishes) before anything connects."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from common import logs
from printfleet import cmd_query, cmd_sink
from printfleet.cli import build_parser, main
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings, check_url


@pytest.fixture(autouse=True)
def local_stack_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local stack's state folder as `printfleet stack up` leaves it (no server runs):
    given no address, these commands use the local stack's, as in a developer's checkout."""
    (tmp_path / "stack" / "kafka").mkdir(parents=True)
    monkeypatch.setenv("PRINTFLEET_STATE_DIR", str(tmp_path / "stack"))

SITE = """\
site_id = "a"
site_secret = "b"
state_dir = "state"
[gateway]
url = "https://gw.example.com"
token = "t"
[printers]
urls = ["https://10.0.0.21/printers/p001/"]
"""

BAD_URLS = ["localhost:8123", "127.0.0.1", "ftp://h:21", "http://", "http://h:port", "https:///db", "http://[::1"]


@pytest.fixture(autouse=True)
def log_levels(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The levels `main` configures logging with (and no handler left on a closed stream)."""
    levels: list[int] = []
    monkeypatch.setattr(logs, "configure",
                        lambda **kw: levels.append(logging.DEBUG if kw["verbose"] else logging.WARNING))
    for name in ("PRINTFLEET_GATEWAY_SITES_FILE", "PRINTFLEET_CLICKHOUSE_URL", "PRINTFLEET_CLICKHOUSE_PASSWORD",
                 "PRINTFLEET_CLICKHOUSE_PASSWORD_FILE", "PRINTFLEET_CLICKHOUSE_CLUSTER", "PRINTFLEET_CLICKHOUSE_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    return levels


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_clear_line(err: str, *words: str) -> str:
    """The one line of `err`; fails unless it is one line holding every word, and no
    Python internals."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "__init__" not in err and "Error:" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def script(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("printfleet")
    return subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=120, env=env)


# --- 1. gateway without --sites-file -------------------------------------------------------


def test_gateway_without_sites_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "gateway")
    assert code == 2
    line = one_clear_line(err, "printfleet gateway:", "--sites-file", "required", "PRINTFLEET_GATEWAY_SITES_FILE")
    assert line == (
        "printfleet gateway: --sites-file is required (or PRINTFLEET_GATEWAY_SITES_FILE, or sites_file in [gateway] "
        "of --config), e.g. --sites-file sites.toml"
    )


def test_gateway_sites_file_from_the_environment_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("PRINTFLEET_GATEWAY_SITES_FILE", str(tmp_path / "absent.toml"))
    code, err = run(capsys, "gateway")
    assert code == 2
    one_clear_line(err, "printfleet gateway:", "absent.toml")


def test_gateway_missing_sites_file_as_a_user_sees_it() -> None:
    done = script("gateway")
    assert done.returncode == 2
    one_clear_line(done.stderr, "--sites-file", "required")


# --- 2. ClickHouse URLs (query and sink) ---------------------------------------------------


def _must_not_connect(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("connected despite a bad URL")


@pytest.mark.parametrize("url", BAD_URLS)
def test_query_with_a_bad_clickhouse_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str,
) -> None:
    monkeypatch.setattr(cmd_query, "execute", _must_not_connect)
    monkeypatch.setattr(ClickHouseClient, "start", _must_not_connect)
    code, err = run(capsys, "query", "alerts", "--clickhouse-url", url)
    assert code == 2
    one_clear_line(err, "printfleet query:", "--clickhouse-url", repr(url), "http://", "https://", "host",
                   "e.g. --clickhouse-url http://127.0.0.1:8123")


def test_query_sql_with_a_bad_clickhouse_url(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cmd_query, "execute", _must_not_connect)
    code, err = run(capsys, "query", "--sql", "SELECT 1", "--clickhouse-url", "host:8123")
    assert code == 2
    line = one_clear_line(err)
    assert line == (
        "printfleet query: --clickhouse-url 'host:8123' is not a ClickHouse URL: it needs http:// or https:// "
        "and a host, e.g. --clickhouse-url http://127.0.0.1:8123"
    )


@pytest.mark.parametrize("extra", [[], ["--migrate-only"]])
@pytest.mark.parametrize("url", BAD_URLS)
def test_sink_with_a_bad_clickhouse_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, extra: list[str],
) -> None:
    monkeypatch.setattr(cmd_sink, "serve", _must_not_connect)
    monkeypatch.setattr(cmd_sink, "_migrate", _must_not_connect)
    code, err = run(capsys, "sink", "--clickhouse-url", url, *extra)
    assert code == 2
    one_clear_line(err, "printfleet sink:", "--clickhouse-url", repr(url), "http://", "https://", "e.g.")


def test_query_bad_url_as_a_user_sees_it() -> None:
    done = script("query", "alerts", "--clickhouse-url", "localhost:8123")
    assert done.returncode == 2
    one_clear_line(done.stderr, "--clickhouse-url", "http://")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8123", "https://ch.example.com", "http://[::1]:8123", "http://h/"])
def test_good_clickhouse_urls_pass(url: str) -> None:
    assert check_url(url) == url
    assert ClickHouseClient(ClickHouseSettings(url, database="db")).url == url


@pytest.mark.parametrize("url", BAD_URLS)
def test_the_settings_check_urls_the_same_way(url: str) -> None:
    with pytest.raises(ValueError, match="needs http:// or https:// and a host, e.g. http://127.0.0.1:8123"):
        ClickHouseSettings(url, database="db")


def test_the_url_message_names_an_environment_variable_with_its_syntax() -> None:
    with pytest.raises(ValueError, match=r"^PRINTFLEET_CLICKHOUSE_URL 'h:1' .* e\.g\. PRINTFLEET_CLICKHOUSE_URL=http"):
        check_url("h:1", "PRINTFLEET_CLICKHOUSE_URL")


# --- 3. the collector's site.toml ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (SITE + "[cadence]\nheartbeat_s = \"10\"\n", ["[cadence] heartbeat_s", "must be a number", "a string", '"10"']),
        (SITE + "[cadence]\nheartbeat = 10\n", ["unknown key [cadence] heartbeat", "did you mean heartbeat_s",
                                              "known keys in [cadence]: heartbeat_s, events_s"]),
        ("status_prot = 1\n" + SITE, ["unknown key status_prot", "did you mean status_port", "known top-level keys",
                                      "site_id", "[gateway]"]),
        ("status_port = \"8080\"\n" + SITE, ["status_port must be an integer", "a string"]),
        (SITE.replace('urls = ["https://10.0.0.21/printers/p001/"]', 'urls = "https://p/"'),
         ["[printers] urls must be an array of strings", "a string"]),
        (SITE.replace('token = "t"\n', ""), ["missing key [gateway] token", "a string"]),
        ("gateway = 1\n" + SITE.split("[gateway]")[0], ["[gateway] must be a table", "an integer"]),
        ("site_id = \"a\nstate_dir = 3\n", ["not valid TOML", "line 1"]),
    ],
    ids=["wrong-type", "unknown-table-key", "unknown-top-key", "int-as-string", "array", "missing", "table",
         "not-toml"],
)
def test_collector_config_mistakes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, words: list[str],
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    code, err = run(capsys, "collector", "--config", str(path))
    assert code == 2
    one_clear_line(err, "printfleet collector: config file", str(path), *words)


def test_collector_config_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "collector", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    line = one_clear_line(err)
    assert line == f"printfleet collector: config file {tmp_path / 'nope.toml'}: cannot read it: No such file or directory"


def test_collector_config_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "collector", "--config", str(tmp_path))
    assert code == 2
    one_clear_line(err, "printfleet collector: config file", "cannot read it")


def test_collector_wrong_type_as_a_user_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + "[cadence]\nheartbeat_s = \"10\"\n")
    done = script("collector", "--config", str(path))
    assert done.returncode == 2
    one_clear_line(done.stderr, "[cadence] heartbeat_s", "must be a number")


# --- 4. bench --help, -v after the command, --version --------------------------------------


def test_bench_help_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr()
    for name in ("codec", "ingest", "streams", "sink"):
        assert name in out.out
    assert out.err == ""


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["stack", "status", "-v"], True),
        (["stack", "status", "--verbose"], True),
        (["-v", "stack", "status"], True),
        (["stack", "status"], False),
        (["query", "alerts", "--show-sql", "-v"], True),
    ],
)
def test_verbose_before_or_after_the_command(argv: list[str], verbose: bool) -> None:
    args, _ = build_parser().parse_known_args(argv)
    assert args.verbose is verbose


@pytest.mark.parametrize(("argv", "level"), [
    (["query", "alerts", "--show-sql", "-v"], logging.DEBUG),
    (["-v", "query", "alerts", "--show-sql"], logging.DEBUG),
    (["query", "alerts", "--show-sql"], logging.WARNING),
])
def test_verbose_after_the_command_turns_on_debug_logging(
    capsys: pytest.CaptureFixture[str], log_levels: list[int], argv: list[str], level: int,
) -> None:
    assert main(argv) == 0
    assert log_levels == [level]
    assert "SELECT" in capsys.readouterr().out


def test_stack_status_accepts_verbose_after_the_command(tmp_path: Path) -> None:
    env = {**os.environ, "PRINTFLEET_STATE_DIR": str(tmp_path)}
    done = script("stack", "status", "-v", env=env)
    assert done.returncode in (0, 1), done.stderr  # 1: the stack is not running; 2 would be a usage error
    assert "unrecognized" not in done.stderr and "usage:" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "kafka" in done.stdout and "clickhouse" in done.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"printfleet {metadata.version('printfleet')}\n"


def test_version_as_a_user_sees_it() -> None:
    done = script("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("printfleet ") and len(done.stdout.split()) == 2


def test_a_benchmark_gets_its_own_options_and_verbose_stays_ours(
    monkeypatch: pytest.MonkeyPatch, log_levels: list[int],
) -> None:
    from types import SimpleNamespace

    from printfleet import cmd_bench

    seen: list[list[str]] = []

    def run(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(cmd_bench, "load", lambda name: SimpleNamespace(run=run))
    assert main(["bench", "codec", "--records", "5", "-v", "--strict"]) == 0
    assert seen == [["--records", "5", "--strict"]]
    assert log_levels == [logging.DEBUG]
