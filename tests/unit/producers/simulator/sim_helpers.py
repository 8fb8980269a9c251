"""Shared builders and schema checks for the simulator's unit tests (no servers)."""

from __future__ import annotations

import functools
from typing import Any, Iterator

from producers.simulator import Fleet, SimulatorSettings
from schemas import ENVELOPE_FIELDS, SchemaRegistry

START_MS = 1_741_939_200_000  # 2025-03-14T08:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
REGISTRY = SchemaRegistry.load_default()
PAGED = {"events": "events", "jobs": "jobs", "logs": "logs"}


def fleet(printers: int, seed: int = 7, start_ms: int = START_MS) -> Fleet:
    return Fleet(SimulatorSettings(printers=printers, seed=seed, start_ms=start_ms))


@functools.cache
def day_fleet() -> Fleet:
    """20 printers after one simulated day; tests only read it (reads do not change it)."""
    f = fleet(20)
    f.advance_to(START_MS + DAY_MS)
    return f


def all_pages(f: Fleet, printer_id: str, endpoint: str, after: int = 0) -> list[dict[str, Any]]:
    """Every entry of a paged endpoint after `after`, following `more`."""
    out: list[dict[str, Any]] = []
    while True:
        page = f.read(printer_id, endpoint, after=after, limit=50 if endpoint == "jobs" else 1000)
        out += page[endpoint]
        if not page["more"]:
            return out
        after = page[endpoint][-1]["seq"]


def schema_raw(kind: str) -> dict[str, Any]:
    return dict(REGISTRY.schema(kind).raw)


def _named_types(schema: Any, names: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, names)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum") and "name" in schema:
            names[schema["name"]] = schema
        for field in schema.get("fields", ()):
            _named_types(field["type"], names)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], names)


def missing_fields(kind: str, obj: dict[str, Any]) -> list[str]:
    """Paths of schema fields (envelope ids excluded) that `obj` lacks, recursing into
    nested records, non-null unions and every array item."""
    raw = schema_raw(kind)
    names: dict[str, Any] = {}
    _named_types(raw, names)
    skip = set(ENVELOPE_FIELDS) - {"event_time"}
    return list(_missing(raw, obj, kind, names, skip))


def _record_of(t: Any, names: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(t, str):
        t = names.get(t.rsplit(".", 1)[-1], t)
    if isinstance(t, dict) and t.get("type") == "record":
        return t
    return None


def _missing(record: dict[str, Any], obj: dict[str, Any], path: str, names: dict[str, Any], skip: set[str]) -> Iterator[str]:
    for field in record["fields"]:
        name = field["name"]
        if name in skip:
            continue
        if name not in obj:
            yield f"{path}.{name}"
            continue
        value = obj[name]
        if value is None:
            continue
        types = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for t in types:
            if isinstance(t, dict) and t.get("type") == "array":
                inner = _record_of(t["items"], names)
                if inner is not None:
                    for i, item in enumerate(value):
                        yield from _missing(inner, item, f"{path}.{name}[{i}]", names, set())
            inner = _record_of(t, names)
            if inner is not None:
                yield from _missing(inner, value, f"{path}.{name}", names, set())


def project(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What a collector that whitelists by schema field keeps of `obj`, plus an envelope:
    a record the registry can encode."""
    raw = schema_raw(kind)
    names: dict[str, Any] = {}
    _named_types(raw, names)
    record = _project(raw, obj, names)
    record.update(record_id="00000000-0000-4000-8000-000000000000", site_id="site-test", device_id="dev-test")
    record.pop("schema_version", None)
    return record


def _project(record: dict[str, Any], obj: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in record["fields"]:
        name = field["name"]
        if name not in obj:
            continue
        value = obj[name]
        types = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for t in types:
            if value is None:
                break
            if isinstance(t, dict) and t.get("type") == "array":
                inner = _record_of(t["items"], names)
                if inner is not None:
                    value = [_project(inner, item, names) for item in value]
                    break
            inner = _record_of(t, names)
            if inner is not None:
                value = _project(inner, value, names)
                break
        out[name] = value
    return out


def enum_symbols(kind: str, enum: str) -> set[str]:
    return set(REGISTRY.enum_symbols(kind, enum))
