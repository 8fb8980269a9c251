"""Names every package shares about record kinds, without loading any schema.

A *kind* is one kind of record (heartbeat, job, alert...). Its schemas live in
`schemas/avro/<kind>/v<N>.avsc`; the registry checks at load time that the folders and
these constants agree, so importing a constant never needs the files.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "io.printfleet"

# Records a site collector reads from printers and uploads (the gateway accepts these
# kinds from sites, and only these).
DEVICE_KINDS: Final[tuple[str, ...]] = (
    "device_identity",
    "heartbeat",
    "system_event",
    "job",
    "usage_counters",
    "cleaning_roll",
    "agent_system",
    "printhead_system",
    "build_unit",
    "device_log",
)

# Records the stream processors produce in the cloud.
CLOUD_KINDS: Final[tuple[str, ...]] = (
    "alert",
    "utilisation",
    "fleet_state",
    "benchmark",
    "update_advisory",
)

KINDS: Final[tuple[str, ...]] = DEVICE_KINDS + CLOUD_KINDS

# The first fields of every record, in this order and with these meanings; see any .avsc.
ENVELOPE_FIELDS: Final[tuple[str, ...]] = (
    "record_id",
    "schema_version",
    "site_id",
    "device_id",
    "event_time",
)

# What the anonymous benchmark carries in site_id and device_id: its type admits no other
# value, so no identity can be written there by mistake.
ANONYMOUS: Final = "ANONYMOUS"


def record_name(kind: str) -> str:
    """Full Avro name of a kind's top-level record: `heartbeat` -> `io.printfleet.Heartbeat`.

    Used by the loader to check each file declares the record its folder promises.
    """
    return f"{NAMESPACE}." + "".join(part.capitalize() for part in kind.split("_"))
