"""Hypothesis strategies built from an Avro schema, generically.

`records(raw_schema)` draws values that the codec must round-trip exactly, in the
codec's representation: timestamp-millis and date as ints within the calendar's range,
floats exactly representable in 32 bits, no NaN or infinity (NaN != NaN would make
equality meaningless), strings without lone surrogates (not valid UTF-8).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_TIMESTAMP_MILLIS = st.integers(-62_135_596_800_000, 253_402_300_799_999)  # years 1..9999
_DATE_DAYS = st.integers(-719_162, 2_932_896)  # years 1..9999
_TEXT = st.text(max_size=12)
_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "bytes": st.binary(max_size=12),
    "string": _TEXT,
}
_LOGICAL: dict[str, st.SearchStrategy[Any]] = {
    "timestamp-millis": _TIMESTAMP_MILLIS,
    "date": _DATE_DAYS,
}


def records(schema: dict[str, Any], *, max_items: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Records of a top-level record schema as written in its .avsc file."""
    return _Builder(schema.get("namespace", ""), max_items).build(schema, schema.get("namespace", ""))


class _Builder:
    def __init__(self, namespace: str, max_items: int) -> None:
        self.named: dict[str, st.SearchStrategy[Any]] = {}
        self.namespace = namespace
        self.max_items = max_items

    def build(self, schema: Any, namespace: str) -> st.SearchStrategy[Any]:
        if isinstance(schema, list):
            return st.one_of([self.build(branch, namespace) for branch in schema])
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVES[schema]
            full = schema if "." in schema else f"{namespace}.{schema}"
            # deferred: a named type may be referenced before its strategy is complete
            return st.deferred(lambda: self.named[full])
        kind = schema["type"]
        if isinstance(kind, (dict, list)):
            return self.build(kind, namespace)
        logical = schema.get("logicalType")
        if logical in _LOGICAL:
            return _LOGICAL[logical]
        if kind in _PRIMITIVES:
            return _PRIMITIVES[kind]
        if kind == "array":
            return st.lists(self.build(schema["items"], namespace), max_size=self.max_items)
        if kind == "map":
            return st.dictionaries(_TEXT, self.build(schema["values"], namespace), max_size=self.max_items)
        name = schema["name"]
        namespace = schema.get("namespace", namespace) if "." not in name else name.rsplit(".", 1)[0]
        full = name if "." in name else f"{namespace}.{name}"
        strategy: st.SearchStrategy[Any]
        if kind == "enum":
            strategy = st.sampled_from(schema["symbols"])
        elif kind == "fixed":
            strategy = st.binary(min_size=schema["size"], max_size=schema["size"])
        elif kind in ("record", "error"):
            # registered before the fields are built, so recursive references resolve
            self.named[full] = st.deferred(lambda: fields_strategy)
            fields_strategy = st.fixed_dictionaries(
                {f["name"]: self.build(f["type"], namespace) for f in schema["fields"]}
            )
            strategy = fields_strategy
        else:
            raise ValueError(f"no strategy for Avro type {kind!r}")
        self.named[full] = strategy
        return strategy
