"""Update advisories: Ed25519-verified catalogue entries only; versions compared right."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from streams_sim import encode_all

from streams.advisories import (
    AdvisoryLog,
    Device,
    Release,
    advise,
    compare_versions,
    parse_version,
    sign,
    unsent,
    verify,
)
from streams.errors import InvalidVersionError

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
DEVICE = Device("site-A", "dev-1", "M0P44A", "5.9.3.1", material_type="PA12", at_ms=1_742_000_000_000)


def _release(version: str, **kw: object) -> Release:
    fields: dict[str, object] = {
        "model_number": "M0P44A", "advisory_type": "FIRMWARE", "version": version,
        "released_at": 1_741_000_000_000, "summary": f"Firmware {version}: fixes", "severity": "WARNING",
        "release_notes_url": f"https://example.invalid/notes/{version}", "package_sha256": "ab" * 32,
    }
    fields.update(kw)
    return sign(Release(**fields), KEY)  # type: ignore[arg-type]


def test_verify_accepts_the_signed_entry_and_rejects_any_change() -> None:
    good = _release("5.10.0")
    assert verify(good, PUBLIC)
    tampered: list[tuple[str, Any]] = [
        ("version", "5.10.1"), ("package_sha256", "cd" * 32), ("model_number", "4WY25A"),
        ("summary", "Firmware 5.10.0: fixes!"), ("released_at", 1), ("severity", "INFO"),
        ("release_notes_url", "https://evil.invalid/")]
    for name, value in tampered:
        assert not verify(dataclasses.replace(good, **{name: value}), PUBLIC), name
    assert not verify(good, Ed25519PrivateKey.generate().public_key())  # another key
    assert not verify(dataclasses.replace(good, signature="not base64!"), PUBLIC)
    assert not verify(dataclasses.replace(good, signature=""), PUBLIC)


def test_versions_compare_as_numbers() -> None:
    assert compare_versions("5.10.0", "5.9.3") == 1
    assert compare_versions("5.3", "5.3.0.0") == 0
    assert compare_versions("6.0.0-rc1", "6.0.0") == -1
    assert compare_versions("6.0.0-rc1", "5.99") == 1
    with pytest.raises(InvalidVersionError):
        parse_version("five")


@given(st.lists(st.integers(0, 30), min_size=1, max_size=5), st.lists(st.integers(0, 30), min_size=1, max_size=5))
def test_version_order_is_the_order_of_number_tuples(a: list[int], b: list[int]) -> None:
    def pad(x: list[int]) -> list[int]:
        return x + [0] * (5 - len(x))

    expected = (pad(a) > pad(b)) - (pad(a) < pad(b))
    assert compare_versions(".".join(map(str, a)), ".".join(map(str, b))) == expected


def test_newest_verified_release_is_advised_and_a_forged_one_never() -> None:
    forged = dataclasses.replace(_release("5.12.0"), version="5.13.0")  # signature no longer matches
    catalogue = [_release("5.8.0"), _release("5.10.0"), _release("5.11.2"), forged,
                 _release("6.0.0", model_number="4WY25A")]
    advice = advise(DEVICE, catalogue, PUBLIC)
    firmware = [r for r in advice.records if r["advisory_type"] == "FIRMWARE"]
    assert [r["available_version"] for r in firmware] == ["5.11.2"]
    assert firmware[0]["installed_version"] == "5.9.3.1" and firmware[0]["package_sha256"] == "ab" * 32
    assert advice.rejected == [forged]
    encode_all("update_advisory", advice.records)
    assert advise(DEVICE, catalogue, PUBLIC) == advice  # deterministic: same record ids


def test_up_to_date_or_unparseable_devices_get_nothing() -> None:
    catalogue = [_release("5.10.0")]
    assert advise(dataclasses.replace(DEVICE, firmware="5.10.0"), catalogue, PUBLIC).records == []
    assert advise(dataclasses.replace(DEVICE, firmware="weird"), catalogue, PUBLIC).records == []


def test_print_parameter_sets_for_the_devices_material() -> None:
    catalogue = [
        _release("2.0", advisory_type="PRINT_PARAMETERS", material_type="PA12", summary="PA12 Balanced 2.0"),
        _release("3.0", advisory_type="PRINT_PARAMETERS", material_type="PA11", summary="PA11 3.0"),
    ]
    records = advise(DEVICE, catalogue, PUBLIC).records
    assert [(r["advisory_type"], r["material_type"], r["installed_version"]) for r in records] == [
        ("PRINT_PARAMETERS", "PA12", "none")]
    installed = dataclasses.replace(DEVICE, parameters_version="2.0")
    assert advise(installed, catalogue, PUBLIC).records == []
    encode_all("update_advisory", records)


def test_each_advisory_goes_out_once_per_device() -> None:
    records = advise(DEVICE, [_release("5.10.0")], PUBLIC).records
    log, new = unsent(AdvisoryLog(), records)
    assert new == records
    assert unsent(log, records) == (log, [])
    assert AdvisoryLog.from_dict(log.to_dict()) == log


def test_catalogue_entries_load_from_dicts() -> None:
    entry = _release("5.10.0")
    assert Release.from_dict(dataclasses.asdict(entry)) == entry
    with pytest.raises(TypeError):
        Release.from_dict({**dataclasses.asdict(entry), "unknown": 1})
