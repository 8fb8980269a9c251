"""Update advisories: a signed catalogue of releases joined with each device's firmware.

A release (firmware, or a print-parameter set for a model and material) is published as
a `Release` with an Ed25519 signature by the maker over `canonical_bytes()`: UTF-8 JSON
of every field but the signature, keys sorted, no spaces, behind a domain prefix (so the
signature cannot be replayed for another purpose). The advisory agent calls

    advise(device, catalogue, public_key)   # on a device's identity (firmware) change

which **verifies every candidate's signature before it can be advised**: a release that
fails verification is never advised, and is returned in `Advice.rejected` for the
agent to log and count. `AdvisoryLog` remembers which advisories a device was given, so
each goes out once per installed version (replays give the same record ids anyway).

Versions compare as dotted numbers ("5.10.0" > "5.9.3", "5.3" == "5.3.0"), a
`-suffix` (pre-release) sorting before the release itself.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streams.errors import InvalidVersionError
from streams.ids import derived_id
from streams.plain import PlainState

SIGNING_DOMAIN: Final = b"printfleet release catalogue v1\n"
_VERSION: Final = re.compile(r"^(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.]+))?$")


@dataclass(frozen=True, slots=True)
class Release:
    """One catalogue entry; `signature` is base64 of the 64-byte Ed25519 signature."""

    model_number: str
    advisory_type: str  # FIRMWARE or PRINT_PARAMETERS
    version: str
    released_at: int  # ms since the epoch
    summary: str
    severity: str = "INFO"
    material_type: str | None = None  # print-parameter sets only
    release_notes_url: str | None = None
    package_sha256: str | None = None
    signature: str = ""

    def canonical_bytes(self) -> bytes:
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        return SIGNING_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def advisory_id(self) -> str:
        return derived_id("advisory", self.model_number, self.advisory_type, self.material_type, self.version)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Release:
        """From a catalogue file's entry. Raises TypeError for unknown or missing keys."""
        return cls(**data)


def sign(release: Release, private_key: Ed25519PrivateKey) -> Release:
    """The release with its signature (the maker's release tooling; tests)."""
    return replace(release, signature=base64.b64encode(private_key.sign(release.canonical_bytes())).decode())


def verify(release: Release, public_key: Ed25519PublicKey) -> bool:
    """True only if `signature` is the maker's signature over this exact entry."""
    try:
        signature = base64.b64decode(release.signature, validate=True)
        public_key.verify(signature, release.canonical_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_version(text: str) -> tuple[tuple[int, ...], tuple[int, str]]:
    """A sortable key: numbers with trailing zeros removed, then (1, "") for a release
    or (0, suffix) for a pre-release. Raises InvalidVersionError."""
    match = _VERSION.match(text.strip())
    if not match:
        raise InvalidVersionError(f"not a version: {text!r}")
    numbers = [int(p) for p in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    suffix = match.group(2)
    return tuple(numbers), ((0, suffix) if suffix else (1, ""))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, the same as, or newer than `b`."""
    ka, kb = parse_version(a), parse_version(b)
    return (ka > kb) - (ka < kb)


@dataclass(frozen=True, slots=True)
class Device:
    site_id: str
    device_id: str
    model_number: str
    firmware: str
    material_type: str | None = None  # build material in use, for parameter sets
    parameters_version: str | None = None  # parameter set installed, when known
    at_ms: int = 0  # event time of the observation that prompted the check


@dataclass(frozen=True, slots=True)
class Advice:
    records: list[dict[str, Any]]
    rejected: list[Release]  # failed signature verification: never advised


def advise(device: Device, catalogue: Sequence[Release], public_key: Ed25519PublicKey) -> Advice:
    """The newest verified firmware newer than the device's, and the newest verified
    parameter set for its model and material newer than the one installed. A device
    firmware that does not parse gets no firmware advisory (InvalidVersionError is not
    raised: one odd device must not stop the agent)."""
    rejected: list[Release] = []
    out = []
    for kind, installed, material in (
        ("FIRMWARE", device.firmware, None),
        ("PRINT_PARAMETERS", device.parameters_version, device.material_type),
    ):
        if kind == "PRINT_PARAMETERS" and material is None:
            continue
        candidates = [
            r for r in catalogue
            if r.model_number == device.model_number and r.advisory_type == kind
            and (kind == "FIRMWARE" or r.material_type == material) and _newer(r.version, installed)
        ]
        for release in sorted(candidates, key=lambda r: parse_version(r.version), reverse=True):
            if verify(release, public_key):
                out.append(to_record(device, release, installed or "none"))
                break
            rejected.append(release)
    return Advice(out, rejected)


def _newer(version: str, installed: str | None) -> bool:
    try:
        return installed is None or compare_versions(version, installed) > 0
    except InvalidVersionError:
        return False


def to_record(device: Device, release: Release, installed: str) -> dict[str, Any]:
    """The `update_advisory` record; the id depends on device, advisory and installed
    version only, so a device is told once per version it runs."""
    return {
        "record_id": derived_id("update_advisory", device.device_id, release.advisory_id, installed),
        "site_id": device.site_id,
        "device_id": device.device_id,
        "event_time": max(device.at_ms, release.released_at),
        "advisory_id": release.advisory_id,
        "advisory_type": release.advisory_type,
        "severity": release.severity,
        "model_number": release.model_number,
        "installed_version": installed,
        "available_version": release.version,
        "material_type": release.material_type,
        "released_at": release.released_at,
        "summary": release.summary,
        "release_notes_url": release.release_notes_url,
        "package_sha256": release.package_sha256,
    }


@dataclass(slots=True)
class AdvisoryLog(PlainState):
    """Advisory record ids a device was given (the agent's table value per device)."""

    sent: list[str] = field(default_factory=list)


def unsent(log: AdvisoryLog, records: Sequence[Mapping[str, Any]]) -> tuple[AdvisoryLog, list[Mapping[str, Any]]]:
    """The records not sent before, and the log with them added."""
    new = [r for r in records if r["record_id"] not in log.sent]
    if not new:
        return log, []
    return AdvisoryLog(sent=(log.sent + [str(r["record_id"]) for r in new])[-256:]), new
