"""Settings objects from a TOML file, `PRINTFLEET_*` environment variables and flags.

Every component has one frozen dataclass of settings. `build()` fills it in one
precedence: defaults, then the component's table of the configuration file, then the
environment (`PRINTFLEET_<PREFIX>_<FIELD>`), then flags, which win. Values from the file
and the environment are validated against the field's type by pydantic; every bad key is
named in one error (its file key or variable, the value, what was expected), and a key
the component does not have is an error too, not ignored. Called once in each
subcommand's `run()`.

Secrets (passwords) are `Secret` fields: their value never shows in a repr, a log line,
an exception message or `--print-config`; code that needs it calls `reveal()`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from common.errors import PrintfleetError
from pydantic import TypeAdapter, ValidationError
from pydantic_core import core_schema

T = TypeVar("T")


class Secret:
    """A string that does not print itself: `repr()` and `str()` give `Secret('***')`
    (or `Secret('')` when empty), so a settings object can be logged whole."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one call that hands it to a client library."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


class SettingsError(PrintfleetError, ValueError):
    """One or more settings are wrong; the message names each (one per line)."""

    retriable = False


def build(cls: type[T], prefix: str, env: Mapping[str, str] | None = None, *,
          config: Mapping[str, Any] | None = None, config_name: str = "", **flags: Any) -> T:
    """An instance of dataclass `cls` from `config` (its table of the configuration file,
    named `config_name` in errors, e.g. "printfleet.toml [sink]"), `env` and `flags`;
    flags that are None fall through.

    Raises SettingsError naming every key or variable whose value does not validate, and
    every key of `config` that is not a setting of `cls`; TypeError when a required
    setting is missing.
    """
    env = os.environ if env is None else env
    hints = typing.get_type_hints(cls)
    settable = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if not dataclasses.is_dataclass(hints[f.name])]  # nested settings come built
    values: dict[str, Any] = {}
    problems: list[str] = []
    where = f"{config_name} " if config_name else ""
    for key, raw in (config or {}).items():
        if key not in settable:
            problems.append(f"{where}{key}: not a setting here (known: {', '.join(settable)})")
            continue
        _take(values, problems, key, raw, hints[key], f"{where}{key}")
    for name in settable:
        variable = f"PRINTFLEET_{prefix}_{name}".upper().replace("__", "_")
        raw = env.get(variable)
        if raw:
            _take(values, problems, name, raw, hints[name], variable)
    if problems:
        raise SettingsError("\n".join(problems))
    values.update({k: v for k, v in flags.items() if v is not None})
    return cls(**values)


def load_config(path: Path) -> dict[str, Any]:
    """The tables of a TOML configuration file. Raises SettingsError naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"configuration file {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"configuration file {path}: not valid TOML ({exc})") from None


def _take(values: dict[str, Any], problems: list[str], name: str, raw: Any, hint: Any, source: str) -> None:
    try:
        values[name] = _adapter(hint).validate_python(raw)
    except ValidationError as exc:
        shown = "***" if _is_secret(hint) else repr(raw)
        problems.append(f"{source}={shown}: " + "; ".join(e["msg"] for e in exc.errors()))


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


def _is_secret(hint: Any) -> bool:
    return hint is Secret or Secret in typing.get_args(hint)
