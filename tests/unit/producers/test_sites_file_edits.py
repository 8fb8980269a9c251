"""Edits of the gateway's sites file (producers/gateway/enrolment.py): each edit is what
the gateway then loads (`SiteDirectory.load`), bad ids and duplicates are refused with
the file untouched, the file is replaced whole and keeps its mode, and two edits at once
both stay."""

from __future__ import annotations

import os
import stat
import threading
import uuid
from pathlib import Path

import pytest

from producers.errors import EnrolmentError
from producers.gateway.enrolment import SiteEntry, SitesFile, read_sites, render_sites
from producers.gateway.sites import SiteDirectory, hash_token


def _uuids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


@pytest.fixture
def sites(tmp_path: Path) -> SitesFile:
    return SitesFile(tmp_path / "sites.toml")


def test_add_creates_the_file_0600_holding_only_the_tokens_digest(sites: SitesFile) -> None:
    token = sites.add_site("acme-berlin")
    text = sites.path.read_text()
    assert token not in text and hash_token(token) in text
    assert stat.S_IMODE(sites.path.stat().st_mode) == 0o600
    site = SiteDirectory.load(sites.path).authenticate(token)
    assert site is not None and site.site_id == "acme-berlin" and site.devices == frozenset()


def test_each_site_gets_its_own_token(sites: SitesFile) -> None:
    a, b = sites.add_site("a"), sites.add_site("b")
    directory = SiteDirectory.load(sites.path)
    assert a != b and len(a) >= 40
    assert [directory.authenticate(t).site_id for t in (a, b)] == ["a", "b"]  # type: ignore[union-attr]


def test_an_existing_site_id_is_refused_and_its_token_kept(sites: SitesFile) -> None:
    token = sites.add_site("acme")
    before = sites.path.read_bytes()
    with pytest.raises(EnrolmentError, match="exists already"):
        sites.add_site("acme")
    assert sites.path.read_bytes() == before
    assert SiteDirectory.load(sites.path).authenticate(token) is not None


@pytest.mark.parametrize("bad", ["", "a/b", "-lead", "with space", "é", "a.b", 'q"', "x" * 65])
def test_bad_site_ids_are_refused_and_nothing_is_written(sites: SitesFile, bad: str) -> None:
    with pytest.raises(EnrolmentError, match="site id"):
        sites.add_site(bad)
    assert not sites.path.exists()


@pytest.mark.parametrize("bad", ["dev-1", "", "0b6c2f1e-3a4d-4c5e-9f60-7a8b9c0d1e2", "0b6c2f1e3a4d4c5e9f607a8b9c0d1e2f",
                                 '0b6c2f1e-3a4d-4c5e-9f60-7a8b9c0d1e2"'])
def test_bad_printer_ids_are_refused_and_nothing_is_enrolled(sites: SitesFile, bad: str) -> None:
    sites.add_site("acme")
    good = str(uuid.uuid4())
    with pytest.raises(EnrolmentError, match="printer id"):
        sites.enrol("acme", [good, bad])
    assert sites.sites("acme")[0].devices == ()


def test_enrol_is_idempotent_and_says_what_was_new(sites: SitesFile) -> None:
    token = sites.add_site("acme")
    first, second = _uuids(2)
    assert sites.enrol("acme", [first]) == [first]
    assert sites.enrol("acme", [first, second, second]) == [second]
    assert sites.enrol("acme", [second]) == []
    site = SiteDirectory.load(sites.path).authenticate(token)
    assert site is not None and site.devices == {first, second}


def test_the_case_of_a_printer_uuid_is_kept(sites: SitesFile) -> None:
    sites.add_site("acme")
    upper = str(uuid.uuid4()).upper()
    sites.enrol("acme", [upper])
    assert SiteDirectory.load(sites.path).sites["acme"].devices == {upper}


def test_a_printer_enrolled_at_another_site_is_refused(sites: SitesFile) -> None:
    sites.add_site("a")
    sites.add_site("b")
    (printer,) = _uuids(1)
    sites.enrol("a", [printer])
    with pytest.raises(EnrolmentError, match=f"{printer} \\(at a\\)"):
        sites.enrol("b", [printer])
    assert sites.sites("b")[0].devices == ()


def test_enrol_at_an_unknown_site_is_refused(sites: SitesFile) -> None:
    sites.add_site("a")
    with pytest.raises(EnrolmentError, match="no site 'z'"):
        sites.enrol("z", _uuids(1))


def test_revoke_removes_printers_and_refuses_ones_not_enrolled(sites: SitesFile) -> None:
    token = sites.add_site("acme")
    keep, gone, stranger = _uuids(3)
    sites.enrol("acme", [keep, gone])
    sites.revoke("acme", [gone])
    site = SiteDirectory.load(sites.path).authenticate(token)
    assert site is not None and site.devices == {keep}
    before = sites.path.read_bytes()
    with pytest.raises(EnrolmentError, match=f"not enrolled at site 'acme': {stranger}"):
        sites.revoke("acme", [keep, stranger])
    assert sites.path.read_bytes() == before


def test_rotate_token_replaces_the_digest_and_keeps_the_printers(sites: SitesFile) -> None:
    old = sites.add_site("acme")
    printers = _uuids(2)
    sites.enrol("acme", printers)
    new = sites.rotate_token("acme")
    directory = SiteDirectory.load(sites.path)
    assert new != old and directory.authenticate(old) is None
    site = directory.authenticate(new)
    assert site is not None and site.site_id == "acme" and site.devices == set(printers)


def test_remove_drops_a_site_but_never_the_last(sites: SitesFile) -> None:
    sites.add_site("a")
    b = sites.add_site("b")
    sites.remove_site("a")
    directory = SiteDirectory.load(sites.path)
    assert list(directory.sites) == ["b"] and directory.authenticate(b) is not None
    with pytest.raises(EnrolmentError, match="only site"):
        sites.remove_site("b")
    with pytest.raises(EnrolmentError, match="no site 'a'"):
        sites.remove_site("a")


def test_list_is_sorted_and_names_an_unknown_site(sites: SitesFile) -> None:
    with pytest.raises(EnrolmentError, match="no sites file"):
        sites.sites()
    for name in ("zeta", "alpha", "mid"):
        sites.add_site(name)
    assert [s.site_id for s in sites.sites()] == ["alpha", "mid", "zeta"]
    assert [s.site_id for s in sites.sites("mid")] == ["mid"]
    with pytest.raises(EnrolmentError, match="no site 'nope'"):
        sites.sites("nope")


def test_an_edit_replaces_the_file_whole_keeps_its_mode_and_leaves_no_temporary(sites: SitesFile) -> None:
    sites.add_site("acme")
    os.chmod(sites.path, 0o640)
    inode = sites.path.stat().st_ino
    sites.enrol("acme", _uuids(1))
    assert sites.path.stat().st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(sites.path.stat().st_mode) == 0o640
    assert sorted(p.name for p in sites.path.parent.iterdir()) == ["sites.toml", "sites.toml.lock"]


def test_a_file_written_by_hand_is_read_and_rendered_stably(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(SiteDirectory.render([("site-b", "tb", ["dev-b1"]), ("site-a", "ta", ["dev-a2", "dev-a1"])]))
    entries = read_sites(path)
    assert entries["site-a"] == SiteEntry("site-a", hash_token("ta"), ("dev-a1", "dev-a2"))
    text = render_sites(entries.values())
    assert text.index("[sites.site-a]") < text.index("[sites.site-b]")
    path.write_text(text)
    assert read_sites(path) == entries and render_sites(read_sites(path).values()) == text
    assert SiteDirectory.load(path).authenticate("tb").devices == {"dev-b1"}  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["site", "top"])
def test_a_key_it_does_not_know_refuses_the_edit_instead_of_dropping_it(tmp_path: Path, where: str) -> None:
    path = tmp_path / "sites.toml"
    text = SiteDirectory.render([("a", "ta", [])])
    text = text.replace("devices = []", 'devices = []\nowner = "ops"') if where == "site" else text + "[other]\nx = 1\n"
    path.write_text(text)
    with pytest.raises(EnrolmentError, match="unknown"):
        SitesFile(path).enrol("a", _uuids(1))
    assert path.read_text() == text


def test_a_file_that_is_not_toml_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sites.toml"
    path.write_text("[sites.a\n")
    with pytest.raises(EnrolmentError, match=str(path)):
        SitesFile(path).add_site("b")
    assert path.read_text() == "[sites.a\n"


def test_two_edits_at_once_both_stay(sites: SitesFile) -> None:
    # Each thread opens the lock file itself: flock locks of two open files exclude each
    # other as two processes' would.
    sites.add_site("a")
    sites.add_site("b")
    per_thread = {"a": _uuids(25), "b": _uuids(25)}
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def enrol_one_by_one(site_id: str) -> None:
        start.wait()
        try:
            for printer in per_thread[site_id]:
                SitesFile(sites.path).enrol(site_id, [printer])
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=enrol_one_by_one, args=(s,)) for s in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    directory = SiteDirectory.load(sites.path)
    assert {k: s.devices for k, s in directory.sites.items()} == {k: set(v) for k, v in per_thread.items()}
