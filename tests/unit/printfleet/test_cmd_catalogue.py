"""`printfleet catalogue`: the key made once and usable by the worker; a bad release file,
a missing or wrong key, each refused in one line (exit 2) before Kafka is asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from printfleet.cli import main
from streams import catalogue_publisher
from streams.catalogue import load_public_key

RELEASE = {"model_number": "M0P44A", "advisory_type": "FIRMWARE", "version": "5.4.0",
           "released_at": 1_765_000_000_000, "summary": "Steadier lamp control"}


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async def must_not_publish(*args: object) -> None:
        raise AssertionError("a refused release file must not reach Kafka")

    monkeypatch.setattr(catalogue_publisher, "publish_signed", must_not_publish)
    monkeypatch.setenv("PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")


def test_key_makes_the_signing_key_and_the_public_key_the_worker_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue", "key", "--key", str(tmp_path / "maker.pem")]) == 0
    assert "workers verify with" in capsys.readouterr().out
    load_public_key(tmp_path / "maker.pub.pem")  # raises unless an Ed25519 public key
    first = (tmp_path / "maker.pem").read_bytes()
    assert main(["catalogue", "key", "--key", str(tmp_path / "maker.pem")]) == 0
    assert (tmp_path / "maker.pem").read_bytes() == first  # never replaced


@pytest.mark.parametrize("content,expected", [
    ("[", "not JSON"),
    (json.dumps({**RELEASE, "version": "five"}), "not a version: 'five'"),
    (json.dumps({k: v for k, v in RELEASE.items() if k != "summary"}), "entry 0: .*summary"),
    (json.dumps([RELEASE, {**RELEASE, "advisory_type": "NEWS"}]), "entry 1|advisory_type must be one of"),
])
def test_a_bad_release_file_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str,
) -> None:
    main(["catalogue", "key", "--key", str(tmp_path / "maker.pem")])
    (tmp_path / "r.json").write_text(content)
    assert main(["catalogue", "publish", "--key", str(tmp_path / "maker.pem"), str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("printfleet catalogue publish: ")
    assert re.search(expected, err), err


def test_a_missing_or_wrong_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.json").write_text(json.dumps(RELEASE))
    assert main(["catalogue", "publish", "--key", str(tmp_path / "none.pem"), str(tmp_path / "r.json")]) == 2
    assert "none.pem" in capsys.readouterr().err
    main(["catalogue", "key", "--key", str(tmp_path / "maker.pem")])
    # the public key is no signing key
    assert main(["catalogue", "publish", "--key", str(tmp_path / "maker.pub.pem"), str(tmp_path / "r.json")]) == 2
    assert "maker.pub.pem: not an unencrypted PEM private key" in capsys.readouterr().err
