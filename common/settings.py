"""Settings objects from flags and `PRINTFLEET_*` environment variables.

Every component has one frozen dataclass of settings. `build()` fills it from the
environment (`PRINTFLEET_<PREFIX>_<FIELD>`), then from flags, which win; fields neither
names keep their defaults. Called once in each subcommand's `run()`.
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
                raise ValueError(f"{name}={raw!r}: {exc}") from None
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
    if hint in (int, float, str, Path):
        return hint(raw)
    raise ValueError(f"cannot read {hint} from the environment")
