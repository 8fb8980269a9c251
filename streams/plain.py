"""State dataclasses <-> plain JSON-ready values, for Faust tables backed by changelogs.

Every state in `streams/` is a dataclass (most with slots) whose fields are `int`,
`float`, `str`, `bool`, `None`, nested state dataclasses, `list[...]`, `tuple[...]` and
`dict[str, ...]` of those. `PlainState` gives such a class `to_dict()` and
`from_dict()`; the agents store `state.to_dict()` in a table and rebuild with
`State.from_dict(value)`. JSON has no tuples and no int keys, so tuples travel as lists
and keys must be strings.

`from_dict` raises `StateDecodeError` when a value does not fit the field's type, so a
changelog written by an incompatible version fails loudly instead of corrupting counts.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Self, TypeVar, Union

import orjson

from streams.errors import StateDecodeError

T = TypeVar("T")


_SCALARS: frozenset[type] = frozenset({int, float, str, bool, type(None)})


def to_plain(value: Any) -> Any:
    """`value` as nested dicts, lists and scalars (tuples become lists)."""
    # Every checkpoint writes whole states (long lists of samples among them), so the
    # common cases come first and scalars inside containers are not recursed into.
    kind: type = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _SCALARS else to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): v if type(v) in _SCALARS else to_plain(v) for k, v in value.items()}
    names = _field_names(kind)
    if names is not None:
        return {name: to_plain(getattr(value, name)) for name in names}
    return value


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """The dataclass fields of `cls`, or None when it is not a dataclass."""
    return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None


def from_plain(cls: type[T], data: Any) -> T:
    """An instance of dataclass `cls` from what `to_plain` made. Raises StateDecodeError."""
    result: T = _decode(cls, data, cls.__name__)
    return result


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, data, where)
            except StateDecodeError as exc:
                errors.append(str(exc))
        raise StateDecodeError(f"{where}: {data!r} fits none of {tp}: {errors}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise StateDecodeError(f"{where}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StateDecodeError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(data, list):
            raise StateDecodeError(f"{where}: expected a list, got {type(data).__name__}")
        return [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, (list, tuple)):
            raise StateDecodeError(f"{where}: expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise StateDecodeError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(_decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
    if origin is dict:
        _, value_type = typing.get_args(tp)
        if not isinstance(data, dict):
            raise StateDecodeError(f"{where}: expected an object, got {type(data).__name__}")
        return {str(k): _decode(value_type, v, f"{where}[{k!r}]") for k, v in data.items()}
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise StateDecodeError(f"{where}: expected a number, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise StateDecodeError(f"{where}: expected {tp.__name__}, got {data!r}")
        return data
    raise StateDecodeError(f"{where}: unsupported type {tp!r}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # Resolving string annotations is slow; states are decoded on every table read.
    return typing.get_type_hints(cls)


def copied(state: T, **changes: Any) -> T:
    """A shallow copy of dataclass instance `state` with `changes`: what
    `dataclasses.replace` does, without running `__init__` again (replace was a tenth of
    the cost of a heartbeat in the device agent). A change to a name that is not a field
    raises AttributeError (the states have slots)."""
    cls: type = type(state)
    new: T = object.__new__(cls)
    setattr_ = object.__setattr__  # frozen ones too
    for name in _field_names(cls) or ():
        setattr_(new, name, getattr(state, name))
    for name, value in changes.items():
        setattr_(new, name, value)
    return new


class PlainState:
    """Mixin for state dataclasses: `to_dict()` / `to_json()` for a table, and back."""

    # The states are slotted dataclasses (`@dataclass(slots=True)`), so this mixin must
    # not bring a __dict__ back: an attribute in a slot is read without a dict lookup.
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = to_plain(self)
        return plain

    def to_json(self) -> bytes:
        """The JSON text of `to_dict()`, made by orjson straight from the dataclasses:
        eight times faster than `to_dict()` and json, and checkpoints write every
        changed printer's whole state."""
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Raises StateDecodeError if `data` does not fit the class."""
        return from_plain(cls, data)

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Raises StateDecodeError if `data` is not JSON or does not fit the class."""
        try:
            plain = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StateDecodeError(f"{cls.__name__}: not JSON: {exc}") from None
        return from_plain(cls, plain)
