"""Reads the kept `.avsc` files into immutable `SchemaVersion` values.

Called once per process, by `SchemaRegistry.load_default()` (or `from_directory()` in
tests). Everything expensive — JSON parsing, fastavro parsing, canonical form and
fingerprint — happens here, so the codec's hot path only looks things up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib.abc import Traversable
from types import MappingProxyType
from typing import Any, Final, Mapping

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas import codec
from schemas.errors import SchemaLoadError
from schemas.flat_writer import Write, flat_writer
from schemas.kinds import record_name

_FILE_NAME: Final = re.compile(r"v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True, slots=True)
class EnumType:
    """An enum as a schema declares it; `default` is the symbol readers fall back to."""

    symbols: tuple[str, ...]
    default: str | None


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One version of one kind's schema, parsed once. Compared by identity.

    `raw` is the file's JSON (docs, defaults and logical types included) and must be
    treated as read-only. `parsed` is what the codec hands fastavro: the same schema with
    its logical types removed, so timestamps travel as int milliseconds since the epoch
    and dates as int days. Why: building a datetime costs about 2.5 µs per field, more
    than the whole framing budget of a heartbeat. The wire format and the fingerprint do
    not change, because the Parsing Canonical Form drops logical types anyway.
    """

    kind: str
    version: int
    name: str
    resource: str
    raw: Mapping[str, Any] = field(repr=False)
    parsed: dict[str, Any] = field(repr=False)
    canonical_form: str = field(repr=False)
    fingerprint: bytes = field(repr=False)
    header: bytes = field(repr=False)
    enums: Mapping[str, EnumType] = field(repr=False)
    # Writes a record of a flat schema faster than fastavro (`schemas.flat_writer`); None
    # for the others.
    write: Write | None = field(default=None, repr=False)

    @property
    def fingerprint_int(self) -> int:
        """The CRC-64-AVRO value as the spec (and Java's `parsingFingerprint64`) states it."""
        return int.from_bytes(self.fingerprint, "little")

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint's 8 bytes in wire order, as hex (what fastavro prints)."""
        return self.fingerprint.hex()


def strip_logical_types(schema: Any) -> Any:
    """A copy of a JSON schema without `logicalType` annotations (see `SchemaVersion`)."""
    if isinstance(schema, list):
        return [strip_logical_types(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "logicalType":
            continue
        if key in ("type", "items", "values"):
            out[key] = strip_logical_types(value)
        elif key == "fields":
            out[key] = [
                {**fld, "type": strip_logical_types(fld["type"])} for fld in value
            ]
        else:
            out[key] = value
    return out


def collect_enums(schema: Any, found: dict[str, EnumType] | None = None) -> dict[str, EnumType]:
    """Every enum a JSON schema defines, by short name (`PrinterStatus`)."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            collect_enums(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") == "enum":
            short = str(schema["name"]).rsplit(".", 1)[-1]
            found[short] = EnumType(tuple(schema["symbols"]), schema.get("default"))
        for key in ("type", "items", "values"):
            if key in schema:
                collect_enums(schema[key], found)
        for fld in schema.get("fields", ()):
            collect_enums(fld["type"], found)
    return found


def build_version(kind: str, version: int, raw: Mapping[str, Any], resource: str) -> SchemaVersion:
    """Parse one schema and check what the codec relies on.

    Raises `SchemaLoadError` when fastavro rejects the schema, when the top-level record
    is not `record_name(kind)`, or when `schema_version` does not default to `version`
    (encoders leave that field out and rely on the default).
    """
    try:
        full = fastavro.parse_schema(dict(raw))
        parsed = fastavro.parse_schema(strip_logical_types(raw))
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaLoadError(f"{resource}: not a valid Avro schema: {exc}") from exc
    if not isinstance(full, dict) or not isinstance(parsed, dict) or full.get("type") != "record":
        raise SchemaLoadError(f"{resource}: the top level must be a record")
    expected = record_name(kind)
    if full.get("name") != expected:
        raise SchemaLoadError(f"{resource}: record is {full.get('name')!r}, expected {expected!r}")
    version_field = next((f for f in raw.get("fields", ()) if f.get("name") == "schema_version"), None)
    if version_field is None or version_field.get("default") != version:
        raise SchemaLoadError(f"{resource}: field schema_version must default to {version}")
    canonical = to_parsing_canonical_form(full)
    if canonical != to_parsing_canonical_form(parsed):
        raise SchemaLoadError(f"{resource}: removing logical types changed the canonical form")
    fingerprint = codec.fingerprint(canonical)
    return SchemaVersion(
        kind=kind,
        version=version,
        name=expected,
        resource=resource,
        raw=MappingProxyType(dict(raw)),
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=fingerprint,
        header=codec.MARKER + fingerprint,
        enums=MappingProxyType(collect_enums(raw)),
        write=flat_writer(parsed, codec.MARKER + fingerprint),
    )


def load_versions(root: Traversable) -> list[SchemaVersion]:
    """Every `<kind>/v<N>.avsc` under `root`, sorted by kind and version.

    Raises `SchemaLoadError` for unreadable JSON, misnamed files, or a kind whose
    versions are not 1..N without gaps. Other files (`__init__.py`) are ignored.
    """
    versions: list[SchemaVersion] = []
    for kind_dir in sorted(root.iterdir(), key=lambda t: t.name):
        if not kind_dir.is_dir() or kind_dir.name.startswith(("_", ".")):
            continue
        numbered: dict[int, SchemaVersion] = {}
        for entry in kind_dir.iterdir():
            if not entry.name.endswith(".avsc"):
                continue
            resource = f"{kind_dir.name}/{entry.name}"
            match = _FILE_NAME.fullmatch(entry.name)
            if match is None:
                raise SchemaLoadError(f"{resource}: schema files are named v<N>.avsc")
            try:
                raw = json.loads(entry.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaLoadError(f"{resource}: unreadable: {exc}") from exc
            if not isinstance(raw, dict):
                raise SchemaLoadError(f"{resource}: the top level must be a record")
            number = int(match.group(1))
            numbered[number] = build_version(kind_dir.name, number, raw, resource)
        if numbered and sorted(numbered) != list(range(1, len(numbered) + 1)):
            raise SchemaLoadError(
                f"{kind_dir.name}: versions {sorted(numbered)} are not 1..N without gaps"
            )
        versions.extend(numbered[n] for n in sorted(numbered))
    return versions
