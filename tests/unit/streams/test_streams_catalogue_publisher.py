"""The maker's side of the catalogue without Kafka: the signing key made once (0600, its
public key beside it), signatures that the worker's public key verifies and a tampered
release fails, messages the worker's reader decodes, and bad release files refused."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from common.kafka.settings import KafkaSettings
from streams.advisories import Device, Release, advise, verify
from streams.catalogue import load_public_key
from streams.catalogue_publisher import (
    ensure_signing_key,
    load_private_key,
    message,
    public_key_file,
    publish,
    releases_from_json,
    sign_all,
)
from streams.errors import InvalidRecordError, InvalidVersionError

RELEASE = Release("M0P44A", "FIRMWARE", "5.4.0", 1_765_000_000_000, "Steadier lamp control", severity="WARNING")


def test_the_key_is_made_once_private_and_its_public_key_lies_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "release-signing-key.pem"
    key = ensure_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_file(path) == tmp_path / "keys" / "release-signing-key.pub.pem"
    again = ensure_signing_key(path)
    assert again.sign(b"x") == key.sign(b"x")  # Ed25519 is deterministic: the same key
    assert load_private_key(path).private_bytes_raw() == key.private_bytes_raw()
    public_key_file(path).unlink()
    ensure_signing_key(path)  # the public key comes back
    assert load_public_key(public_key_file(path)).public_bytes_raw() == key.public_key().public_bytes_raw()


def test_a_signed_release_verifies_with_the_public_key_and_a_tampered_one_fails(tmp_path: Path) -> None:
    key = ensure_signing_key(tmp_path / "k.pem")
    public = load_public_key(public_key_file(tmp_path / "k.pem"))
    [signed] = sign_all([RELEASE], key)
    assert verify(signed, public)
    assert not verify(replace(signed, version="5.5.0"), public)
    assert not verify(replace(signed, summary="Install this instead"), public)
    other = ensure_signing_key(tmp_path / "other.pem")
    assert not verify(sign_all([RELEASE], other)[0], public)
    # and so the worker advises the signed one only
    device = Device("site-1", "dev-1", "M0P44A", "5.3.2.7")
    assert [r["available_version"] for r in advise(device, [signed], public).records] == ["5.4.0"]
    assert advise(device, [replace(signed, version="5.5.0")], public).records == []


def test_the_message_is_what_the_workers_reader_decodes_keyed_by_the_advisory(tmp_path: Path) -> None:
    [signed] = sign_all([RELEASE], ensure_signing_key(tmp_path / "k.pem"))
    key, value = message(signed)
    assert Release.from_dict(json.loads(value)) == signed  # as streams.catalogue.follow reads it
    assert key == signed.advisory_id.encode()
    assert message(replace(signed, summary="new notes"))[0] == key  # republished: replaces it


async def test_unsigned_releases_are_refused_before_anything_is_sent() -> None:
    # Nothing listens there: the refusal must come before any connection.
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    with pytest.raises(InvalidRecordError, match="unsigned.*M0P44A 5.4.0"):
        await publish(kafka, [RELEASE])


def test_a_release_file_gives_releases_or_a_clear_error() -> None:
    one = {"model_number": "M0P44A", "advisory_type": "FIRMWARE", "version": "5.4.0",
           "released_at": 1_765_000_000_000, "summary": "s"}
    assert releases_from_json(json.dumps(one)) == [Release(**one)]  # type: ignore[arg-type]
    assert len(releases_from_json(json.dumps([one, {**one, "version": "5.5.0"}]))) == 2
    cases = [
        ("{", "not JSON"),
        (json.dumps([1]), "entry 0: a JSON object"),
        (json.dumps({**one, "colour": "red"}), "entry 0: .*colour"),
        (json.dumps({**one, "advisory_type": "MAGIC"}), "advisory_type must be one of FIRMWARE, PRINT_PARAMETERS"),
        (json.dumps({**one, "advisory_type": "PRINT_PARAMETERS"}), "needs material_type"),
        (json.dumps({**one, "signature": "abc"}), "already has a signature"),
    ]
    for text, expected in cases:
        with pytest.raises(InvalidRecordError, match=expected):
            releases_from_json(text)
    with pytest.raises(InvalidVersionError):
        releases_from_json(json.dumps({**one, "version": "five"}))


def test_a_file_that_is_no_ed25519_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ValueError, match="bad.pem"):
        ensure_signing_key(bad)
