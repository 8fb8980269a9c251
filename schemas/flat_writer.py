"""A faster writer for flat record schemas: straight-line Python made once per schema.

fastavro's writer walks the schema for every record and matches each nullable union's
value against its branches: about 13-24 µs for a fleet_state record, the worker's most
frequent output. For a schema of numbers, strings, enums and unions of null with one of
those, `flat_writer` builds a function that writes the fields one after the other
(about half the time; docs/streams-bench.md).

It writes only what it can write exactly as fastavro does: a value must be exactly a
str, an int (not a bool) within its type's range, a float, one of an enum's symbols or
None where the field is nullable; anything else raises, and so does a missing field
without a default. `codec` then writes that record with fastavro, which encodes it or
raises its precise error; so where this returns bytes, they are fastavro's (the unit
tests compare the two on random records of every flat schema).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

Write = Callable[[Mapping[str, Any]], bytes]

_RANGE: Final = {"long": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 31), (1 << 31) - 1)}
_PACK: Final = {"double": struct.Struct("<d").pack, "float": struct.Struct("<f").pack}


def flat_writer(parsed: Mapping[str, Any], header: bytes) -> Write | None:
    """The writer of a parsed record schema (its output starts with `header`), or None
    when the schema is not flat."""
    env: dict[str, Any] = {"HEADER": header, "pack_double": _PACK["double"], "pack_float": _PACK["float"]}
    lines = ["def write(r):", "    out = bytearray(HEADER)", "    put = out.append"]
    for i, f in enumerate(parsed["fields"]):
        avro, nullable = f["type"], isinstance(f["type"], list)
        if nullable:
            if len(avro) != 2 or avro[0] != "null":
                return None  # (a default other than null would need the other order)
            avro = avro[1]
        if isinstance(avro, dict) and set(avro) <= {"type", "doc"}:
            avro = avro["type"]  # {"type": "long"} and the like
        value = f"v{i}"
        if "default" in f:
            env[f"default{i}"] = f["default"]
            lines.append(f"    {value} = r.get({f['name']!r}, default{i})")
        else:
            lines.append(f"    {value} = r[{f['name']!r}]")
        body = _field(avro, value, i, env)
        if body is None:
            return None
        if nullable:  # branch 0 is null, branch 1 the value: zigzag 0 and 2
            lines += [f"    if {value} is None:", "        put(0)", "    else:", "        put(2)"]
            lines += ["        " + line for line in body]
        else:
            lines += ["    " + line for line in body]
    lines.append("    return bytes(out)")
    exec("\n".join(lines), env)  # noqa: S102 - code made from the schema's field names and types only
    return env["write"]  # type: ignore[no-any-return]


def _field(avro: Any, value: str, i: int, env: dict[str, Any]) -> list[str] | None:
    """The lines that write one value (`out` and `put` in scope)."""
    if isinstance(avro, dict) and avro.get("type") == "enum":
        if len(avro["symbols"]) > 64:  # every index in one varint byte
            return None
        env[f"symbols{i}"] = {symbol: 2 * n for n, symbol in enumerate(avro["symbols"])}
        return [f"put(symbols{i}[{value}])"]
    if not isinstance(avro, str):
        return None  # records, arrays, maps, fixed: fastavro
    # Exact types only (not a bool for an int, not an int for a double): fastavro's union
    # matching is stricter than its plain fields, and whatever this refuses it writes.
    if avro == "string":
        return [f"if type({value}) is not str: raise TypeError({value})",
                f"b = {value}.encode()", "n = len(b) << 1", *_varint_loop(), "out += b"]
    if avro in _RANGE:
        low, high = _RANGE[avro]
        return [f"if type({value}) is not int or not {low} <= {value} <= {high}: raise OverflowError({value})",
                f"n = ({value} << 1) ^ ({value} >> 63)", *_varint_loop()]
    if avro in _PACK:
        return [f"if type({value}) is not float: raise TypeError({value})", f"out += pack_{avro}({value})"]
    return None  # booleans, bytes, fixed, records, arrays, maps: fastavro


def _varint_loop() -> list[str]:
    return ["while n > 127:", "    put((n & 127) | 128)", "    n >>= 7", "put(n)"]
