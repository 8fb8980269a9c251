"""Deterministic ids for the records the stream logic emits, and bounded id memory.

Output record ids are UUIDv5 of what the record is derived from, so reprocessing the same
input (a Faust redelivery, a replay from an earlier offset) yields the same ids and
consumers drop the repeat (STYLE convention 8). `RecentIds` remembers the last N record
ids a state applied: enough to tell a redelivered record from a new one where a state
cannot tell from the record's content alone.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.plain import PlainState

# Fixed namespace for every id the stream processors derive; changing it changes all ids.
NAMESPACE: Final = uuid.UUID("6f0e4c1e-5b2a-5d1c-9a57-3f0b8f3c2d11")
_NAMESPACE_BYTES: Final = NAMESPACE.bytes


def derived_id(*parts: object) -> str:
    """A UUIDv5 (text) of `parts`, e.g. `derived_id("alert", dedup_key, raised_at)`:
    `str(uuid.uuid5(NAMESPACE, "\\x1f".join(parts)))`, made without `uuid.UUID`, whose
    constructor and formatting were half the cost of an output record's id."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join([str(p) for p in parts]).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5 (RFC 9562 section 5.5)
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant 10
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex, 16 chars) of a record's content without its `record_id`.

    Used for ids of re-emitted aggregates: the same content gives the same id whatever
    path (arrival order, redeliveries) led to it.
    """
    body = {k: v for k, v in record.items() if k != "record_id"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _short(record_id: str) -> str:
    # 72 bits: among a few thousand remembered ids a false match is ~1e-18 likely, and
    # the table value stays a third of the size of full UUID texts.
    return binascii.b2a_base64(hashlib.blake2b(record_id.encode(), digest_size=9).digest(), newline=False).decode()


@dataclass
class RecentIds(PlainState):
    """The last `capacity` ids added, oldest first (bounded memory for dedup), each
    kept as a 12-character digest.

    An id that fell out of the window is no longer recognised; callers pair this with a
    content rule (event time, window closed) so such an old id is still harmless.
    """

    capacity: int = 1024
    ids: list[str] = field(default_factory=list)

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and _short(record_id) in self._index()

    def add(self, record_id: str) -> None:
        """Remember `record_id` (a no-op if present); drops the oldest beyond capacity."""
        self.remember(_short(record_id))

    def knows(self, key: str) -> bool:
        """Whether `key`, remembered as it is (`remember`), is among the last ones."""
        return key in self._index()

    def remember(self, key: str) -> None:
        """Remember a key that is short already, as it is: cheaper than a record id's
        digest (about 1.5 µs). It must not look like a digest: give it a character
        base64 does not use, e.g. "hb@1764000000000"."""
        index = self._index()
        if key in index:
            return
        self.ids.append(key)
        index.add(key)
        if len(self.ids) > self.capacity:
            dropped = len(self.ids) - self.capacity
            index.difference_update(self.ids[:dropped])
            del self.ids[:dropped]

    def _index(self) -> set[str]:
        # A set beside the list: `in` on the list scanned up to `capacity` ids for every
        # heartbeat. Not a field, so neither a table value nor equality sees it (orjson
        # leaves out attributes that start with "_"); built again after a state is read.
        index: set[str] | None = self.__dict__.get("_index_set")
        if index is None:
            index = self.__dict__["_index_set"] = set(self.ids)
        return index
