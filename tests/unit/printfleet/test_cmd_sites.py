"""`printfleet sites`: the token alone on stdout, once; mistakes are one line on stderr
with exit 1 (a refused edit) or 2 (no sites file named); the file flag or the gateway's
variable names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from printfleet.cli import main
from producers.gateway.sites import SiteDirectory

PRINTER = "0b6c2f1e-3a4d-4c5e-9f60-7a8b9c0d1e2f"


def test_add_prints_the_token_alone_on_stdout_and_where_it_goes_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "sites.toml"
    assert main(["sites", "add", "acme", "--sites-file", str(path)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n" and SiteDirectory.load(path).authenticate(token) is not None
    assert "site.toml" in err and "[gateway]" in err and "shown once" in err
    assert token not in err and token not in path.read_text()


def test_the_gateways_variable_names_the_file_and_list_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "sites.toml"
    monkeypatch.setenv("PRINTFLEET_GATEWAY_SITES_FILE", str(path))
    assert main(["sites", "add", "acme"]) == 0
    assert main(["sites", "enrol", "acme", PRINTER]) == 0
    capsys.readouterr()
    assert main(["sites", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["site_id"], s["devices"]) for s in listed] == [("acme", [PRINTER])]
    assert main(["sites", "list", "acme"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["SITE", "PRINTERS", "TOKEN_SHA256"]
    assert table[1].split()[:2] == ["acme", "1"] and table[2].strip() == PRINTER


def test_rotate_token_prints_a_new_token_that_replaces_the_old(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sites.toml"
    main(["sites", "add", "acme", "--sites-file", str(path)])
    old = capsys.readouterr().out.strip()
    assert main(["sites", "rotate-token", "acme", "--sites-file", str(path)]) == 0
    new = capsys.readouterr().out.strip()
    directory = SiteDirectory.load(path)
    assert directory.authenticate(old) is None and directory.authenticate(new) is not None


@pytest.mark.parametrize("argv, message", [
    (["sites", "add", "a/b"], "site id 'a/b'"),
    (["sites", "enrol", "acme", "dev-1"], "printer id 'dev-1'"),
    (["sites", "revoke", "acme", PRINTER], "not enrolled"),
    (["sites", "enrol", "nope", PRINTER], "no site 'nope'"),
    (["sites", "add", "acme"], "exists already"),
])
def test_a_refused_edit_is_one_line_on_stderr_exit_1_and_the_file_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    path = tmp_path / "sites.toml"
    main(["sites", "add", "acme", "--sites-file", str(path)])
    before = path.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--sites-file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err and err.startswith(f"printfleet sites {argv[1]}: ")
    assert path.read_bytes() == before


def test_without_a_sites_file_it_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRINTFLEET_GATEWAY_SITES_FILE", raising=False)
    assert main(["sites", "list"]) == 2
    assert "--sites-file is required" in capsys.readouterr().err
