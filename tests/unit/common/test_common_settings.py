from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from common.settings import build


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
