from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from common.settings import Secret, SettingsError, build, load_config


@dataclass(frozen=True)
class Example:
    name: str
    port: int = 1
    ratio: float = 0.5
    verbose: bool = False
    cert: Path | None = None


def test_environment_then_flags_then_defaults() -> None:
    env = {"PRINTFLEET_EX_PORT": "8080", "PRINTFLEET_EX_VERBOSE": "yes", "PRINTFLEET_EX_CERT": "/tmp/c.pem", "PRINTFLEET_EX_NAME": "env"}
    got = build(Example, "ex", env, name="flag", port=None)
    assert got == Example(name="flag", port=8080, ratio=0.5, verbose=True, cert=Path("/tmp/c.pem"))


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="PRINTFLEET_EX_PORT='many'"):
        build(Example, "ex", {"PRINTFLEET_EX_PORT": "many"}, name="x")
    with pytest.raises(ValueError, match="PRINTFLEET_EX_VERBOSE"):
        build(Example, "ex", {"PRINTFLEET_EX_VERBOSE": "perhaps"}, name="x")


def test_missing_required_field_is_an_error() -> None:
    with pytest.raises(TypeError):
        build(Example, "ex", {})


@dataclass(frozen=True)
class WithSecret:
    user: str = ""
    password: Secret = Secret()


@dataclass(frozen=True)
class Outer:
    inner: Example
    label: str = "x"


def test_the_file_is_below_the_environment_which_is_below_the_flags() -> None:
    config = {"name": "file", "port": 7, "ratio": 0.25, "cert": "/etc/c.pem"}
    env = {"PRINTFLEET_EX_PORT": "8080"}
    got = build(Example, "ex", env, config=config, name="flag")
    assert got == Example(name="flag", port=8080, ratio=0.25, cert=Path("/etc/c.pem"))


def test_every_bad_key_is_named_once_with_where_it_came_from() -> None:
    config = {"port": "lots", "verbose": "maybe", "colour": "red"}
    with pytest.raises(SettingsError) as raised:
        build(Example, "ex", {"PRINTFLEET_EX_RATIO": "half"}, config=config, config_name="p.toml [ex]", name="n")
    lines = str(raised.value).splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("p.toml [ex] port='lots': ") and "integer" in lines[0]
    assert lines[1].startswith("p.toml [ex] verbose='maybe': ") and "boolean" in lines[1]
    assert lines[2].startswith("p.toml [ex] colour: not a setting here (known: name, port, ratio, verbose, cert)")
    assert lines[3].startswith("PRINTFLEET_EX_RATIO='half': ")
    assert isinstance(raised.value, ValueError)


def test_a_secret_is_validated_but_never_shown() -> None:
    got = build(WithSecret, "s", {"PRINTFLEET_S_PASSWORD": "hunter2"})
    assert got.password.reveal() == "hunter2" and "hunter2" not in repr(got)
    with pytest.raises(SettingsError) as raised:
        build(WithSecret, "s", {}, config={"password": 12345})
    assert "password=***" in str(raised.value) and "12345" not in str(raised.value)


def test_a_nested_settings_object_is_not_a_key_of_the_file() -> None:
    with pytest.raises(SettingsError, match="inner: not a setting here"):
        build(Outer, "o", {}, config={"inner": {"name": "x"}}, inner=Example(name="y"))
    assert build(Outer, "o", {"PRINTFLEET_O_INNER": "ignored"}, inner=Example(name="y")).inner.name == "y"


def test_a_configuration_file_that_is_missing_or_not_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"configuration file .*absent.toml: cannot read it"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sink\nport = 1\n")
    with pytest.raises(SettingsError, match=r"bad.toml: not valid TOML"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text("[sink]\nbatch_max_records = 5\n")
    assert load_config(good) == {"sink": {"batch_max_records": 5}}
