"""Who may see what: the dashboard's users, their tokens and their sites.

The users file (TOML) holds, per user, the sha256 of their token, their sites and
whether they are an operator (every site):

    [users."alice"]
    token_sha256 = "9f86d081884c7d65..."
    sites = ["site-a"]
    operator = false

Tokens are 32 random bytes (`secrets.token_urlsafe`), so a plain sha256 is enough: there
is nothing to guess that a slow hash would protect. `add_user` (`printfleet dashboard
users add`) appends a user and returns the token, which is never stored. `UsersFile`
re-reads the file when it changes, so a user added while the dashboard runs can sign in
at once. Pure apart from reading and appending the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from common.file_lock import exclusive_lock
from dashboard.errors import UsersFileError

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_DIGEST: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in user. `sites` is empty for an operator, who sees every site."""

    name: str
    sites: frozenset[str]
    operator: bool = False

    def may_see(self, site: str) -> bool:
        return self.operator or site in self.sites

    def visible(self, known: Iterable[str]) -> list[str]:
        """The sites of `known` this user sees, plus (for a site user) their own even
        before the feed has seen them: sorted."""
        if self.operator:
            return sorted(set(known))
        return sorted(self.sites)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Users:
    """The users of one version of the file, by token digest."""

    by_digest: Mapping[str, User]

    def authenticate(self, token: str) -> User | None:
        """The user this token belongs to, or None. Compares the digest with every
        user's in constant time, and never stops early: how long it takes says nothing
        about how close a guess was."""
        if not token:
            return None
        digest = token_digest(token)
        found: User | None = None
        for known, user in self.by_digest.items():
            if hmac.compare_digest(known, digest):
                found = user
        return found


def parse(text: str, where: str) -> Users:
    """The users of a users file's text. Raises UsersFileError naming `where` and every
    malformed user."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{where}: not valid TOML ({exc})") from None
    table = data.get("users", {})
    problems: list[str] = [f"{where}: [{key}] is not known (only [users.NAME])" for key in data if key != "users"]
    if not isinstance(table, dict):
        raise UsersFileError(f"{where}: users must be a table")
    by_digest: dict[str, User] = {}
    for name, entry in table.items():
        user, problem = _user(name, entry)
        if problem:
            problems.append(f"{where}: user {name!r}: {problem}")
            continue
        assert user is not None
        digest = str(entry["token_sha256"])
        if digest in by_digest:
            problems.append(f"{where}: user {name!r} has the token of {by_digest[digest].name!r}")
        by_digest[digest] = user
    if problems:
        raise UsersFileError("\n".join(problems))
    return Users(by_digest)


def _user(name: str, entry: Any) -> tuple[User | None, str]:
    if not isinstance(entry, dict):
        return None, "not a table"
    unknown = set(entry) - {"token_sha256", "sites", "operator"}
    if unknown:
        return None, f"unknown keys {sorted(unknown)}"
    if not _DIGEST.fullmatch(str(entry.get("token_sha256", ""))):
        return None, "token_sha256 must be 64 lower-case hex digits"
    sites, operator = entry.get("sites", []), entry.get("operator", False)
    if not isinstance(operator, bool):
        return None, "operator must be true or false"
    if not isinstance(sites, list) or not all(isinstance(s, str) and s for s in sites):
        return None, "sites must be a list of site ids"
    if not operator and not sites:
        return None, "neither an operator nor given any site"
    if operator and sites:
        return None, "an operator sees every site: give no sites"
    return User(name, frozenset(sites), operator), ""


def load(path: Path) -> Users:
    """The users of the file; none when it does not exist (every request is then
    refused with 401, until `users add` makes it). Raises UsersFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Users({})
    except OSError as exc:
        raise UsersFileError(f"users file {path}: cannot read it ({exc.strerror or exc})") from None
    return parse(text, f"users file {path}")


class UsersFile:
    """The users file as of its latest version: re-read when its modification time or
    size changes (checked at most every `check_s`). A version that does not parse is
    logged by the caller and the previous one kept: a typo must not sign everyone out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users = Users({})
        self.reload()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def reload(self) -> bool:
        """Re-read the file if it changed; True when it did. Raises UsersFileError and
        then keeps the previous users."""
        stamp = self._current_stamp()
        if stamp == self._stamp and stamp is not None:
            return False
        users = load(self.path)
        self._users, self._stamp = users, stamp
        return True

    @property
    def users(self) -> Users:
        return self._users


def add_user(path: Path, name: str, sites: Iterable[str], operator: bool) -> str:
    """Append a user to the users file (created, mode 0600, if missing) and return their
    new token: the only time it is seen. Raises ValueError for a bad name, a name taken,
    or a user who would see no site; UsersFileError when the file is broken."""
    sites = list(dict.fromkeys(sites))
    if not _NAME.fullmatch(name):
        raise ValueError(f"user name {name!r}: letters, digits and _ . @ - (at most 64), starting with a letter or digit")
    if operator and sites:
        raise ValueError("an operator sees every site: give --operator or --site, not both")
    if not operator and not sites:
        raise ValueError("give the user's sites (--site S, repeatable) or --operator")
    if any(not s.strip() for s in sites):
        raise ValueError("a site id is empty")
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path):
        existing = load(path)
        if any(u.name == name for u in existing.by_digest.values()):
            raise ValueError(f"user {name!r} exists in {path}; choose another name")
        entry = (f"\n[users.{json.dumps(name)}]\ntoken_sha256 = \"{token_digest(token)}\"\n"
                 f"sites = [{', '.join(json.dumps(s) for s in sites)}]\noperator = {'true' if operator else 'false'}\n")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(entry)
            f.flush()
            os.fsync(f.fileno())
    return token
