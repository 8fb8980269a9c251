"""The schema registry: every kept version of every kind, found by kind or fingerprint.

Producers call `encode`/`encode_many`; the gateway calls `identify` to check and route a
message without decoding it; agents and sinks call `decode`/`decode_many`. Build one
registry per process with `SchemaRegistry.load_default()` (cached) and pass it down; it is
immutable, so threads and agents may share it.
"""

from __future__ import annotations

import functools
from importlib.abc import Traversable
from importlib.resources import files
from typing import Any, Iterable, Mapping

from schemas import codec
from schemas.codec import Decoded, DecodePlan
from schemas.errors import SchemaLoadError, UnknownFingerprintError, UnknownSchemaError
from schemas.kinds import KINDS
from schemas.loader import SchemaVersion, load_versions


class SchemaRegistry:
    """All versions of all kinds; the reader version of a kind is its latest unless
    `readers` pins another (a consumer that has not upgraded yet).
    """

    __slots__ = ("_by_kind", "_by_fingerprint", "_readers", "_plans")

    def __init__(
        self, versions: Iterable[SchemaVersion], *, readers: Mapping[str, int] | None = None
    ) -> None:
        """Raises `SchemaLoadError` if two versions share a fingerprint, and
        `UnknownSchemaError` if `readers` names a kind or version that is not there.
        """
        by_kind: dict[str, list[SchemaVersion]] = {}
        by_fingerprint: dict[bytes, SchemaVersion] = {}
        for schema in versions:
            other = by_fingerprint.get(schema.fingerprint)
            if other is not None:
                raise SchemaLoadError(
                    f"{schema.resource} and {other.resource} have the same fingerprint "
                    f"{schema.fingerprint_hex}: a new version must change the schema"
                )
            by_fingerprint[schema.fingerprint] = schema
            by_kind.setdefault(schema.kind, []).append(schema)
        self._by_kind = {
            kind: tuple(sorted(group, key=lambda s: s.version)) for kind, group in by_kind.items()
        }
        self._by_fingerprint = by_fingerprint
        pinned = dict(readers or {})
        self._readers = {
            kind: self.schema(kind, pinned.pop(kind, None)) for kind in self._by_kind
        }
        if pinned:
            raise UnknownSchemaError(next(iter(pinned)))
        self._plans: dict[bytes, DecodePlan] = {
            fp: codec.plan(writer, self._readers[writer.kind]) for fp, writer in by_fingerprint.items()
        }

    @classmethod
    def load_default(cls) -> SchemaRegistry:
        """The registry of the schemas packaged in `schemas/avro/`, parsed once per process.

        Raises `SchemaLoadError` if the packaged files are broken or do not match `KINDS`.
        """
        return _default_registry()

    @classmethod
    def from_directory(
        cls, root: Traversable, *, readers: Mapping[str, int] | None = None
    ) -> SchemaRegistry:
        """A registry of the `<kind>/v<N>.avsc` files under `root` (tests, tools)."""
        return cls(load_versions(root), readers=readers)

    def with_readers(self, readers: Mapping[str, int]) -> SchemaRegistry:
        """The same schemas with other reader versions, e.g. `{"heartbeat": 1}`."""
        return SchemaRegistry(self._by_fingerprint.values(), readers=readers)

    # -- lookups ------------------------------------------------------------------------

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._by_kind)

    def versions(self, kind: str) -> tuple[SchemaVersion, ...]:
        """Every kept version of `kind`, oldest first. Raises `UnknownSchemaError`."""
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownSchemaError(kind) from None

    def all_versions(self) -> tuple[SchemaVersion, ...]:
        return tuple(s for group in self._by_kind.values() for s in group)

    def schema(self, kind: str, version: int | None = None) -> SchemaVersion:
        """A version of `kind`, the latest by default. Raises `UnknownSchemaError`."""
        group = self.versions(kind)
        if version is None:
            return group[-1]
        if 1 <= version <= len(group):
            return group[version - 1]
        raise UnknownSchemaError(kind, version)

    def reader(self, kind: str) -> SchemaVersion:
        """The version that `decode` resolves messages of `kind` to."""
        try:
            return self._readers[kind]
        except KeyError:
            raise UnknownSchemaError(kind) from None

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion:
        """The version with this wire-order fingerprint. Raises `UnknownFingerprintError`."""
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise UnknownFingerprintError(bytes(fingerprint)) from None

    def identify(self, data: bytes) -> SchemaVersion:
        """The writer schema a message names, from its header alone (no body decoding).

        The gateway uses it to validate and route. Raises `NotSingleObjectError` or
        `UnknownFingerprintError`.
        """
        return self.by_fingerprint(codec.read_fingerprint(data))

    def enum_symbols(self, kind: str, enum: str, version: int | None = None) -> tuple[str, ...]:
        """Symbols of the enum named `enum` (short name, e.g. `PrinterStatus`) as a version
        of `kind` declares them. Raises `UnknownSchemaError` (naming `kind:enum`) if absent.
        """
        schema = self.schema(kind, version)
        try:
            return schema.enums[enum].symbols
        except KeyError:
            raise UnknownSchemaError(f"{kind}:{enum}", version) from None

    # -- codec --------------------------------------------------------------------------

    def encode(self, kind: str, record: Mapping[str, Any], *, version: int | None = None) -> bytes:
        """One record as a single-object message, written with the latest (or the given)
        version. Leave `schema_version` out: the schema's default fills it in.

        Raises `UnknownSchemaError` or `RecordEncodeError`.
        """
        return codec.encode(self.schema(kind, version), record)

    def encode_many(
        self, kind: str, records: Iterable[Mapping[str, Any]], *, version: int | None = None
    ) -> list[bytes]:
        """Like `encode` for a batch of one kind; cheaper per record."""
        return codec.encode_many(self.schema(kind, version), records)

    def decode(self, data: bytes, *, reader_version: int | None = None) -> Decoded:
        """The record in a message, resolved to the reader version of its kind (or to
        `reader_version` of its kind for this call).

        Raises `NotSingleObjectError`, `UnknownFingerprintError`, `UnknownSchemaError`
        (no such reader version) or a `CorruptBodyError`.
        """
        fingerprint = codec.read_fingerprint(data)
        how = self._plans.get(fingerprint)
        if how is None:
            raise UnknownFingerprintError(fingerprint)
        if reader_version is not None and reader_version != how.reader.version:
            how = codec.plan(how.writer, self.schema(how.writer.kind, reader_version))
        return codec.decode(data, how)

    def decode_many(self, messages: Iterable[bytes]) -> list[Decoded]:
        """`decode` for a batch (a consumer's poll), much cheaper per message; raises at the
        first bad message. Callers that dead-letter bad messages one by one use `decode`.
        """
        return codec.decode_many(messages, self._plans)

    def decode_records(self, kind: str, messages: Iterable[bytes]) -> list[dict[str, Any]]:
        """The records of a batch from a topic of one kind, resolved to its reader version:
        the agents' and sinks' hot path. Raises what `decode_many` raises, and
        `UnexpectedKindError` at a message of another kind.
        """
        self.reader(kind)  # raises UnknownSchemaError for a kind this registry lacks
        return codec.decode_records(messages, self._plans, kind)


@functools.cache
def _default_registry() -> SchemaRegistry:
    registry = SchemaRegistry.from_directory(files("schemas") / "avro")
    if set(registry.kinds) != set(KINDS):
        raise SchemaLoadError(
            f"schemas/avro holds kinds {sorted(registry.kinds)}, schemas.kinds lists {sorted(KINDS)}"
        )
    return registry
