"""Printer API payloads -> Avro records, keeping only what the schema has a field for.

This is where privacy is enforced at the site: a record is built by walking the *schema*
and copying the payload's value for each field it names, so a key the schema does not
know (job_name, user_name, computer_name, file paths, part names) is never copied,
whatever the printer adds tomorrow. Free-form maps (an event's debug details) keep only
allow-listed keys. Printer-local ids become keyed pseudonyms; the submitting computer
becomes `source_host_pseudonym`. Pure functions: the collector's device sinks call `build()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producers.collector.pseudonym import pseudonym, record_id
from producers.errors import MappingError as MappingError  # defined there; importable here too
from schemas import SchemaRegistry, SchemaVersion

# Debug-detail keys that describe the machine, never the customer's work (see
# docs/printer-api.md). Anything else in the map stays at the site.
DEBUG_DETAIL_KEYS = frozenset({
    "activity", "uptime_s", "layer", "slot", "warning_id", "job_id", "old_serial",
    "roll_serial", "level_pct", "usage_pct", "lamp_temp_c", "bed_temp_c",
    "recoater_current_a", "powder_level_pct", "nozzles_out", "head_temp_c", "sensor",
    "value", "used_pct", "fw_module",
})
# Fields holding printer-local ids, and the pseudonym namespace of each.
_LOCAL_IDS = {
    "job_id": "job", "current_job_id": "job", "part_id": "part", "warning_id": "warning",
    "event_id": "event", "log_id": "log",
}
_ENVELOPE = ("record_id", "schema_version", "site_id", "device_id")


@dataclass(frozen=True)
class Site:
    site_id: str
    secret: bytes


class RecordBuilder:
    """Builds records of every device kind for one site; one per collector."""

    def __init__(self, registry: SchemaRegistry, site: Site) -> None:
        self._site = site
        self._schemas: dict[str, SchemaVersion] = {k: registry.reader(k) for k in registry.kinds}
        self._names: dict[str, Any] = {}
        for schema in self._schemas.values():
            _collect_names(schema.raw, self._names)

    def build(self, kind: str, device_id: str, payload: Mapping[str, Any], identity: tuple[str, ...]) -> dict[str, Any]:
        """The record of `kind` for `payload`; `identity` names the observation (e.g.
        ("event", seq)) and makes the record id stable across re-polls.

        Raises MappingError.
        """
        schema = self._schemas[kind].raw
        secret = self._site.secret
        record: dict[str, Any] = {
            "record_id": record_id(secret, device_id, kind, *identity),
            "site_id": self._site.site_id,
            "device_id": device_id,
        }
        for field in schema["fields"]:
            name = field["name"]
            if name in _ENVELOPE:
                continue
            if name == "source_host_pseudonym":
                host = payload.get("computer_name")
                record[name] = pseudonym(secret, "host", host) if host else None
                continue
            record[name] = self._value(field, payload, kind)
        return record

    def _value(self, field: Mapping[str, Any], payload: Mapping[str, Any], where: str) -> Any:
        name = field["name"]
        if name not in payload or payload[name] is None:
            if "default" in field:
                return field["default"]
            if _nullable(field["type"]):
                return None
            raise MappingError(f"{where}.{name}: missing from the printer's answer")
        value = self._convert(field["type"], payload[name], f"{where}.{name}")
        namespace = _LOCAL_IDS.get(name)
        if namespace and isinstance(value, str) and value:
            value = pseudonym(self._site.secret, namespace, value)
        return value

    def _convert(self, schema: Any, value: Any, where: str) -> Any:
        if isinstance(schema, str) and schema in self._names:
            schema = self._names[schema]
        if isinstance(schema, list):
            branches = [b for b in schema if b != "null"]
            if value is None:
                return None
            return self._convert(branches[0], value, where) if len(branches) == 1 else value
        if not isinstance(schema, dict):
            return value
        kind = schema["type"]
        if kind == "record":
            if not isinstance(value, Mapping):
                raise MappingError(f"{where}: expected an object, got {type(value).__name__}")
            return {f["name"]: self._value(f, value, where) for f in schema["fields"]}
        if kind == "array":
            if not isinstance(value, list):
                raise MappingError(f"{where}: expected a list, got {type(value).__name__}")
            return [self._convert(schema["items"], item, where) for item in value]
        if kind == "map":
            if not isinstance(value, Mapping):
                raise MappingError(f"{where}: expected an object, got {type(value).__name__}")
            kept = {k: v for k, v in value.items() if k in DEBUG_DETAIL_KEYS}
            for key in ("job_id", "warning_id"):
                if kept.get(key):
                    kept[key] = pseudonym(self._site.secret, _LOCAL_IDS[key], str(kept[key]))
            return {k: self._convert(schema["values"], v, where) for k, v in kept.items()}
        return value


def _nullable(schema: Any) -> bool:
    return isinstance(schema, list) and "null" in schema


def _collect_names(schema: Any, names: dict[str, Any], namespace: str = "") -> None:
    """Index named types by full and short name: fields refer to them after first use."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, names, namespace)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
        space = schema.get("namespace", namespace)
        full = schema["name"] if "." in schema["name"] else f"{space}.{schema['name']}"
        names.setdefault(full, schema)
        names.setdefault(schema["name"], schema)
        namespace = space
    for field in schema.get("fields", ()):
        _collect_names(field["type"], names, namespace)
    for key in ("items", "values"):
        if key in schema:
            _collect_names(schema[key], names, namespace)
