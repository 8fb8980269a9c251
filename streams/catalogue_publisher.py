"""The maker's side of the release catalogue: the signing key, and signed releases
written to the catalogue topic that every worker follows (`streams.catalogue`).

    key = ensure_signing_key(Path(".stack/demo/release-signing-key.pem"))  # made once, 0600
    signed = await publish_signed(kafka, [Release(...)], key)

Called by `printfleet demo` and `printfleet catalogue publish`; tests and benchmarks may
use it too. A message is keyed by the release's `advisory_id` (model, type, material,
version), so publishing a release again replaces it in the compacted topic, and its
value is the JSON `streams.catalogue.follow` reads. Only signed releases are written:
the worker verifies each signature with the maker's public key (`--release-key-file`,
the `.pub.pem` beside the private key) before it advises anything.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from common.kafka import admin, clients
from common.kafka.diagnose import failure
from common.kafka.settings import KafkaSettings
from common.kafka.topics import CATALOGUE, pipeline_specs
from streams.advisories import Release, parse_version, sign
from streams.errors import InvalidRecordError

ADVISORY_TYPES: Final = ("FIRMWARE", "PRINT_PARAMETERS")
PUBLIC_SUFFIX: Final = ".pub.pem"


def public_key_file(private_key_file: Path) -> Path:
    """Where the public key of `private_key_file` lies: beside it, `<name>.pub.pem`."""
    return private_key_file.with_name(private_key_file.name.removesuffix(".pem") + PUBLIC_SUFFIX)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The maker's signing key from an unencrypted PEM file. Raises ValueError when the
    file holds no such key (OSError when it cannot be read)."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (TypeError, ValueError) as exc:  # TypeError: the key is encrypted
        raise ValueError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def ensure_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key in `path`, made there first if there is none (mode 0600: it signs
    what every printer will be advised to install), with its public key beside it
    (`public_key_file`), written again if missing or not this key's. Raises ValueError
    for a file that holds no Ed25519 key, OSError when a file cannot be written."""
    if path.exists():
        key = load_private_key(path)
    else:
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        # Created with its mode: no moment where another user could read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public_file = public_key_file(path)
    if not public_file.exists() or public_file.read_bytes() != public:
        public_file.write_bytes(public)
    return key


def check_release(release: Release) -> None:
    """Raise InvalidRecordError (InvalidVersionError for the version) unless the entry
    can be advised: a known type, a version that parses, a material for a parameter set."""
    if release.advisory_type not in ADVISORY_TYPES:
        raise InvalidRecordError(f"release {release.model_number} {release.version}: advisory_type must be one of "
                                 f"{', '.join(ADVISORY_TYPES)}, not {release.advisory_type!r}")
    parse_version(release.version)
    if release.advisory_type == "PRINT_PARAMETERS" and not release.material_type:
        raise InvalidRecordError(f"release {release.model_number} {release.version}: a PRINT_PARAMETERS set needs material_type")
    if not release.model_number:
        raise InvalidRecordError(f"release {release.version}: model_number is empty")


def releases_from_json(text: str) -> list[Release]:
    """Unsigned releases from a release file: one JSON object with `Release`'s fields, or
    a list of them. Raises InvalidRecordError naming the entry and what is wrong."""
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise InvalidRecordError(f"not JSON: {exc}") from None
    entries = data if isinstance(data, list) else [data]
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidRecordError(f"entry {i}: a JSON object with the release's fields, not {type(entry).__name__}")
        if entry.get("signature"):
            raise InvalidRecordError(f"entry {i}: already has a signature; give the release unsigned")
        try:
            release = Release.from_dict(entry)
        except TypeError as exc:
            raise InvalidRecordError(f"entry {i}: {exc}") from None
        check_release(release)
        out.append(release)
    return out


def message(release: Release) -> tuple[bytes, bytes]:
    """(key, value) of the release's catalogue message."""
    return release.advisory_id.encode(), json.dumps(asdict(release), sort_keys=True).encode()


def sign_all(releases: Sequence[Release], key: Ed25519PrivateKey) -> list[Release]:
    """Each release checked (`check_release`) and signed with the maker's key."""
    for release in releases:
        check_release(release)
    return [sign(release, key) for release in releases]


async def publish(kafka: KafkaSettings, releases: Sequence[Release]) -> None:
    """Write signed releases to the catalogue topic (made first if missing), each
    acknowledged by every in-sync replica before this returns. Raises InvalidRecordError
    for an unsigned release (then nothing is written), TopicMismatch, KafkaUnavailable."""
    unsigned = [f"{r.model_number} {r.version}" for r in releases if not r.signature]
    if unsigned:
        raise InvalidRecordError(f"unsigned releases are never published: {', '.join(unsigned)}")
    await admin.apply(kafka, pipeline_specs([CATALOGUE]))
    producer = clients.producer(kafka)
    try:
        await producer.start()
        sent = [await producer.send(kafka.topic(CATALOGUE), value=value, key=key)
                for key, value in map(message, releases)]
        await asyncio.gather(*sent)
    except KafkaError as exc:
        raise await failure(kafka, exc, "cannot publish to the release catalogue") from exc
    finally:
        await producer.stop()


async def publish_signed(kafka: KafkaSettings, releases: Sequence[Release], key: Ed25519PrivateKey) -> list[Release]:
    """Sign the releases with the maker's key and publish them (`sign_all`, `publish`);
    returns them as published."""
    signed = sign_all(releases, key)
    await publish(kafka, signed)
    return signed
