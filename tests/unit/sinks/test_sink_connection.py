"""The one ClickHouse settings object (sinks/connection.py), the shared flags that build it
(printfleet/clickhouse_flags.py), and how the client classes ClickHouse's errors
(sinks/client.py `translate`). No server: pure logic."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from clickhouse_connect.driver import exceptions as ch_exc

from common.settings import Secret
from printfleet import clickhouse_flags
from sinks.client import CLUSTER_INSERT_SETTINGS, INSERT_SETTINGS, ClickHouseClient, translate
from sinks.connection import ClickHouseSettings
from sinks.errors import ClickHouseAccessDenied, ClickHouseRejected, ClickHouseUnavailable


@pytest.fixture(autouse=True)
def local_stack_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local stack's state folder as `printfleet stack up` leaves it (no server runs):
    given no address, these commands use the local stack's, as in a developer's checkout."""
    (tmp_path / "stack" / "kafka").mkdir(parents=True)
    monkeypatch.setenv("PRINTFLEET_STATE_DIR", str(tmp_path / "stack"))



def _stack_env() -> dict[str, str]:
    """A local stack on port 38123, set up where `local_stack_here` made its folder."""
    return {"PRINTFLEET_CLICKHOUSE_HTTP_PORT": "38123", "PRINTFLEET_STATE_DIR": os.environ["PRINTFLEET_STATE_DIR"]}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    clickhouse_flags.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_without_a_url_the_local_stack_is_used_with_defaults() -> None:
    s = clickhouse_flags.settings(_args(), _stack_env())
    assert (s.url, s.user, s.database, s.cluster, s.timeout_s) == ("http://127.0.0.1:38123", "default", "printfleet", "", 30.0)
    assert not s.password and s.ca_file is None and s.cert_file is None


def test_every_variable_has_its_fixed_name(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "c.pem", "k.pem"))
    for f in (ca, cert, key):
        f.write_text("pem")
    env = {
        "PRINTFLEET_CLICKHOUSE_URL": "https://ch.example.com:8443", "PRINTFLEET_CLICKHOUSE_USER": "sink",
        "PRINTFLEET_CLICKHOUSE_PASSWORD": "s3cret", "PRINTFLEET_CLICKHOUSE_DATABASE": "fleet",
        "PRINTFLEET_CLICKHOUSE_CA_FILE": str(ca), "PRINTFLEET_CLICKHOUSE_CERT_FILE": str(cert),
        "PRINTFLEET_CLICKHOUSE_KEY_FILE": str(key), "PRINTFLEET_CLICKHOUSE_CLUSTER": "main",
        "PRINTFLEET_CLICKHOUSE_TIMEOUT_S": "12",
    }
    s = clickhouse_flags.settings(_args(), env)
    assert s == ClickHouseSettings("https://ch.example.com:8443", "sink", Secret("s3cret"), "fleet", ca, cert, key, 12.0, "main")
    assert (s.host, s.port, s.secure, s.certificate_login) == ("ch.example.com", 8443, True, False)


def test_flags_win_over_variables_and_database_keeps_its_old_spelling() -> None:
    env = {"PRINTFLEET_CLICKHOUSE_URL": "http://a:1", "PRINTFLEET_CLICKHOUSE_DATABASE": "x", "PRINTFLEET_CLICKHOUSE_USER": "u"}
    s = clickhouse_flags.settings(_args("--clickhouse-url", "http://b:2", "--database", "y", "--clickhouse-user", "v",
                                        "--cluster", "c1"), env)
    assert (s.url, s.database, s.user, s.cluster) == ("http://b:2", "y", "v", "c1")
    assert clickhouse_flags.settings(_args("--clickhouse-database", "z"), _stack_env()).database == "z"


def test_password_from_a_file_without_its_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("p@ss word\n")
    assert clickhouse_flags.settings(_args("--clickhouse-password-file", str(secret)), _stack_env()).password.reveal() == "p@ss word"
    env = {**_stack_env(), "PRINTFLEET_CLICKHOUSE_PASSWORD_FILE": str(secret)}
    assert clickhouse_flags.settings(_args(), env).password == Secret("p@ss word")


def test_password_twice_or_unreadable_is_one_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a")
    env = {**_stack_env(), "PRINTFLEET_CLICKHOUSE_PASSWORD": "b"}
    with pytest.raises(ValueError, match="^--clickhouse-password-file and PRINTFLEET_CLICKHOUSE_PASSWORD both give a password"):
        clickhouse_flags.settings(_args("--clickhouse-password-file", str(secret)), env)
    with pytest.raises(ValueError, match=r"^--clickhouse-password-file .*nope: cannot read it \(No such file"):
        clickhouse_flags.settings(_args("--clickhouse-password-file", str(tmp_path / "nope")), _stack_env())


@pytest.mark.parametrize("argv", [["--clickhouse-password", "hunter2"], ["--clickhouse-password=hunter2"],
                                  ["--clickhouse-pass", "hunter2"]])
def test_a_password_flag_is_refused_not_read_as_a_file(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _args(*argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err
    if argv[0].startswith("--clickhouse-password"):
        assert "a password on the command line shows in `ps`; set PRINTFLEET_CLICKHOUSE_PASSWORD" in err
    else:
        assert "ambiguous option" in err


def test_the_password_shows_nowhere() -> None:
    s = ClickHouseSettings("http://h:1", "u", Secret("hunter2"))
    for text in (repr(s), str(s), s.describe(), repr(s.password), str(s.password), f"{s.password}"):
        assert "hunter2" not in text
    assert repr(Secret("x")) == "Secret('***')"


def test_a_bad_password_variable_is_not_echoed() -> None:
    from common.settings import build

    # Secret converts any string; what must not happen is the value in a conversion error.
    assert build(ClickHouseSettings, "clickhouse", {"PRINTFLEET_CLICKHOUSE_PASSWORD": "pw"}, url="http://h:1").password == Secret("pw")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url": "http://u:p@h:1"}, "holds a user or password"),
    ({"url": "http://h:1", "database": "a-b"}, "ClickHouse database 'a-b'"),
    ({"url": "http://h:1", "cluster": "a b"}, "ClickHouse cluster 'a b'"),
    ({"url": "http://h:1", "ca_file": Path("/etc/hostname")}, "--clickhouse-ca-file /etc/hostname needs an https:// ClickHouse URL"),
    ({"url": "https://h:1", "ca_file": Path("/no/such.pem")}, "--clickhouse-ca-file /no/such.pem: no such file"),
    ({"url": "https://h:1", "key_file": Path("/etc/hostname")}, "needs its certificate"),
    ({"url": "http://h:1", "timeout_s": 0}, "timeout must be positive"),
])
def test_bad_combinations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClickHouseSettings(**kwargs)  # type: ignore[arg-type]


def test_a_client_certificate_without_password_is_the_login(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("pem")
    assert ClickHouseSettings("https://h", cert_file=cert).certificate_login
    assert not ClickHouseSettings("https://h", cert_file=cert, password=Secret("x")).certificate_login


def test_cluster_mode_inserts_wait_for_every_shard() -> None:
    one = ClickHouseClient(ClickHouseSettings("http://h:1"))
    many = ClickHouseClient(ClickHouseSettings("http://h:1", cluster="main"))
    assert one._insert_settings == dict(INSERT_SETTINGS)
    assert many._insert_settings == {**INSERT_SETTINGS, "distributed_foreground_insert": 1}
    assert CLUSTER_INSERT_SETTINGS == {"distributed_foreground_insert": 1}


def _server_error(code: int, text: str) -> ch_exc.DatabaseError:
    return ch_exc.DatabaseError(f"HTTPDriver for http://h:1 received ClickHouse error code {code}\n Code: {code}. "
                                f"DB::Exception: {text}. (version 26.9.2.1)", code=code)


def test_a_missing_grant_names_the_user_and_the_grant() -> None:
    exc = _server_error(497, "reader: Not enough privileges. To execute this query, it's necessary to have the "
                             "grant CREATE DATABASE ON fleet.*. (ACCESS_DENIED)")
    error = translate(exc, "CREATE DATABASE IF NOT EXISTS `fleet`", "reader")
    assert isinstance(error, ClickHouseAccessDenied) and not error.retriable and error.code == 497
    assert str(error) == ("ClickHouse user 'reader' lacks the grant CREATE DATABASE ON fleet.* "
                          "(CREATE DATABASE IF NOT EXISTS `fleet`); GRANT it, or use a user that has it")


def test_readonly_is_a_user_not_a_passing_state() -> None:
    exc = _server_error(164, "reader: Cannot execute query in readonly mode. (READONLY)")
    error = translate(exc, "INSERT INTO heartbeat", "reader")
    assert isinstance(error, ClickHouseAccessDenied) and not error.retriable
    assert str(error) == ("ClickHouse user 'reader' is read-only (its settings profile sets readonly), which forbids "
                          "INSERT INTO heartbeat: Cannot execute query in readonly mode")


@pytest.mark.parametrize("code", [516, 192, 193, 194])
def test_a_failed_login_is_not_retried(code: int) -> None:
    error = translate(_server_error(code, "u: Authentication failed"), "connecting to http://h:1", "u")
    assert isinstance(error, ClickHouseAccessDenied) and not error.retriable
    assert str(error).startswith("ClickHouse user 'u' could not log in (connecting to http://h:1)")


@pytest.mark.parametrize("code", [242, 159, 279, 999])
def test_passing_states_stay_retriable(code: int) -> None:
    error = translate(_server_error(code, "Table is in readonly mode"), "insert into heartbeat")
    assert isinstance(error, ClickHouseUnavailable) and error.retriable


def test_other_refusals_are_permanent_but_not_access() -> None:
    error = translate(_server_error(60, "Unknown table"), "SELECT 1")
    assert type(error) is ClickHouseRejected and not error.retriable


def test_without_a_url_or_a_local_stack_set_up_here_the_command_refuses(tmp_path: Path) -> None:
    env = {"PRINTFLEET_STATE_DIR": str(tmp_path / "no-stack")}
    with pytest.raises(ValueError, match=r"^no ClickHouse URL: give --clickhouse-url, PRINTFLEET_CLICKHOUSE_URL or "
                                         r"\[clickhouse\] url \(the local stack's is used only where"):
        clickhouse_flags.settings(_args(), env)
