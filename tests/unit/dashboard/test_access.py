"""Who may see what: tokens stored as hashes only, sites per user, operators."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dashboard.access import User, UsersFile, add_user, load, parse, token_digest
from dashboard.errors import UsersFileError


def test_an_added_user_signs_in_with_the_printed_token_and_the_file_keeps_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    token = add_user(path, "alice", ["site-a", "site-b"], operator=False)
    text = path.read_text()
    assert token not in text and token_digest(token) in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    user = load(path).authenticate(token)
    assert user == User("alice", frozenset({"site-a", "site-b"}), False)


def test_a_wrong_or_empty_token_signs_nobody_in(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    token = add_user(path, "alice", ["site-a"], operator=False)
    users = load(path)
    assert users.authenticate(token + "x") is None
    assert users.authenticate("") is None
    assert users.authenticate(token_digest(token)) is None  # the stored hash is not a token


def test_a_site_user_sees_only_their_sites_and_an_operator_all() -> None:
    alice = User("alice", frozenset({"site-a"}))
    ops = User("ops", frozenset(), operator=True)
    assert alice.may_see("site-a") and not alice.may_see("site-b")
    assert ops.may_see("site-a") and ops.may_see("site-b")
    assert alice.visible(["site-b", "site-a", "site-c"]) == ["site-a"]
    assert ops.visible(["site-b", "site-a"]) == ["site-a", "site-b"]


def test_users_add_refuses_a_taken_name_no_sites_and_sites_with_operator(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "alice", ["site-a"], operator=False)
    with pytest.raises(ValueError, match="exists"):
        add_user(path, "alice", ["site-b"], operator=False)
    with pytest.raises(ValueError, match="--site"):
        add_user(path, "bob", [], operator=False)
    with pytest.raises(ValueError, match="not both"):
        add_user(path, "carol", ["site-a"], operator=True)
    with pytest.raises(ValueError, match="user name"):
        add_user(path, "a b", ["site-a"], operator=False)
    assert len(load(path).by_digest) == 1


def test_operators_and_users_appended_one_after_another_all_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    tokens = {name: add_user(path, name, [] if name == "ops" else [f"site-{name}"], operator=name == "ops")
              for name in ("a", "ops", "b")}
    users = load(path)
    signed_in = {n: users.authenticate(t) for n, t in tokens.items()}
    assert {n: u.name if u else None for n, u in signed_in.items()} == {"a": "a", "ops": "ops", "b": "b"}
    assert users.authenticate(tokens["ops"]) == User("ops", frozenset(), True)


def test_a_malformed_users_file_names_the_file_and_every_bad_user() -> None:
    text = """
[users.good]
token_sha256 = "%s"
sites = ["s"]
[users.short]
token_sha256 = "abc"
sites = ["s"]
[users.nosite]
token_sha256 = "%s"
""" % ("a" * 64, "b" * 64)
    with pytest.raises(UsersFileError) as caught:
        parse(text, "users file x.toml")
    message = str(caught.value)
    assert "x.toml" in message and "'short'" in message and "'nosite'" in message and "'good'" not in message


def test_a_missing_users_file_has_no_users(tmp_path: Path) -> None:
    assert load(tmp_path / "none.toml").by_digest == {}


def test_the_users_file_is_reread_when_a_user_is_added_and_a_broken_version_keeps_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    watched = UsersFile(path)
    token = add_user(path, "alice", ["site-a"], operator=False)
    assert watched.reload() is True
    assert watched.users.authenticate(token) is not None
    path.write_text(path.read_text() + "\nnot toml [[[\n")
    with pytest.raises(UsersFileError):
        watched.reload()
    assert watched.users.authenticate(token) is not None
