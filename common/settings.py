"""Settings objects from flags and `PRINTFLEET_*` environment variables.

Every component has one frozen dataclass of settings. `build()` fills it from the
environment (`PRINTFLEET_<PREFIX>_<FIELD>`), then from flags, which win; fields neither
names keep their defaults. Called once in each subcommand's `run()`.

Secrets (passwords) are `Secret` fields: their value never shows in a repr, a log line
or an exception message; code that needs it calls `reveal()`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

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


def build(cls: type[T], prefix: str, env: Mapping[str, str] | None = None, **flags: Any) -> T:
    """An instance of dataclass `cls`; flags that are None fall through to env and defaults.

    Raises ValueError naming the variable whose value does not convert.
    """
    env = os.environ if env is None else env
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"PRINTFLEET_{prefix}_{field.name}".upper().replace("__", "_")
        raw = env.get(name)
        if raw:
            try:
                values[field.name] = _convert(raw, hints[field.name])
            except ValueError as exc:
                shown = "***" if hints[field.name] is Secret else repr(raw)
                raise ValueError(f"{name}={shown}: {exc}") from None
    values.update({k: v for k, v in flags.items() if v is not None})
    return cls(**values)


def _convert(raw: str, hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if hint in (int, float, str, Path, Secret):
        return hint(raw)
    raise ValueError(f"cannot read {hint} from the environment")
