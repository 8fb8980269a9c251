"""Edits of the gateway's sites file: add a site, enrol and revoke printers, rotate a
site's token, remove a site. Called by `printfleet sites` (printfleet/cmd_sites.py); the
gateway reads the file (producers/gateway/sites.py) and reloads it when it changes
(producers/gateway/sites_watch.py).

Every edit is a read-modify-write under an exclusive lock (`<file>.lock`), so two
commands at once both keep their edit, and replaces the file atomically (a temporary
file in the same directory, fsync, `os.replace`, fsync of the directory), so the gateway
reads either the old file or the new one, never half of one. The file keeps its mode
(0600 when new). The text is rendered anew each time, sites and printers sorted, one
printer a line, so a diff of two versions shows just the edit; comments written by hand
are not kept. A key this module does not know refuses the edit instead of being dropped.

Tokens are made here (`secrets`) and handed back once; the file holds only their sha256.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from common.file_lock import exclusive_lock
from producers.errors import EnrolmentError
from producers.gateway.sites import hash_token

T = TypeVar("T")

# A bare TOML key, and no "/": the gateway keys its upload marks `<site id>/<uploader>`.
SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The collector takes a printer's id from its identity's `printer_uuid` as it is written
# there; the form is checked (a truncated paste is refused), the case is kept.
DEVICE_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SITE_KEYS = frozenset({"token_sha256", "devices"})
NEW_FILE_MODE = 0o600
HEADER = (
    "# The gateway's sites: printfleet sites add|enrol|revoke|rotate-token|remove edits this file.\n"
    "# token_sha256 is the sha256 of the site's bearer token; devices are its printers' UUIDs.\n"
)


@dataclass(frozen=True)
class SiteEntry:
    site_id: str
    token_sha256: str
    devices: tuple[str, ...]  # sorted


def new_token() -> str:
    """A site's bearer token: 256 random bits, URL-safe (it goes in an HTTP header)."""
    return secrets.token_urlsafe(32)


def check_site_id(site_id: str) -> str:
    if not SITE_ID.fullmatch(site_id):
        raise EnrolmentError(
            f"site id {site_id!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return site_id


def check_device_id(device_id: str) -> str:
    if not DEVICE_ID.fullmatch(device_id):
        raise EnrolmentError(
            f"printer id {device_id!r}: expected the printer's UUID as its identity reports it "
            "(printer_uuid, e.g. 0b6c2f1e-3a4d-4c5e-9f60-7a8b9c0d1e2f)"
        )
    return device_id


# --- the file ---------------------------------------------------------------------------


def read_sites(path: Path) -> dict[str, SiteEntry]:
    """The sites of `path`; {} when the file does not exist. Raises EnrolmentError naming
    the file when it cannot be read, is not TOML, or holds what `render_sites` would not
    write back (an unknown key, a token digest that is not 64 hex digits)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise EnrolmentError(f"sites file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EnrolmentError(f"sites file {path}: {exc}") from None
    unknown = set(data) - {"sites"}
    if unknown:
        raise EnrolmentError(f"sites file {path}: unknown top-level key(s) {sorted(unknown)}; edit it by hand")
    out: dict[str, SiteEntry] = {}
    for site_id, entry in data.get("sites", {}).items():
        where = f"sites file {path}: site {site_id!r}"
        if not isinstance(entry, dict):
            raise EnrolmentError(f"{where} is not a table")
        if set(entry) - _SITE_KEYS:
            raise EnrolmentError(f"{where}: unknown key(s) {sorted(set(entry) - _SITE_KEYS)}; edit it by hand")
        token = entry.get("token_sha256")
        if not isinstance(token, str) or not _HEX64.fullmatch(token.lower()):
            raise EnrolmentError(f"{where} needs a 64-hex token_sha256")
        devices = entry.get("devices", [])
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise EnrolmentError(f"{where}: devices must be an array of strings")
        out[site_id] = SiteEntry(site_id, token.lower(), tuple(sorted(set(devices))))
    return out


def render_sites(sites: Iterable[SiteEntry]) -> str:
    """The file's text: the header, then each site sorted by id, printers sorted, one a
    line. JSON string escapes are valid TOML basic-string escapes."""
    parts = [HEADER]
    for site in sorted(sites, key=lambda s: s.site_id):
        key = site.site_id if SITE_ID.fullmatch(site.site_id) else json.dumps(site.site_id)
        lines = [f"[sites.{key}]", f'token_sha256 = "{site.token_sha256}"']
        if site.devices:
            lines += ["devices = [", *(f"    {json.dumps(d)}," for d in site.devices), "]"]
        else:
            lines.append("devices = []")
        parts.append("\n" + "\n".join(lines) + "\n")
    return "".join(parts)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new one.
    Keeps the mode of the file it replaces (0600 for a new one). Raises EnrolmentError
    when the directory cannot take the new file; the old one is then untouched."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise EnrolmentError(f"sites file {path}: cannot write in {directory}: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.chmod(tmp, mode)  # mkstemp made it 0600
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EnrolmentError(f"sites file {path}: cannot replace it: {exc}") from None
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory is; Windows cannot open a directory.
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the edits: pure functions of the sites --------------------------------------------


def _site(sites: Mapping[str, SiteEntry], site_id: str) -> SiteEntry:
    try:
        return sites[site_id]
    except KeyError:
        raise EnrolmentError(f"no site {site_id!r} (printfleet sites list shows the sites)") from None


def with_new_site(sites: Mapping[str, SiteEntry], site_id: str, token: str) -> dict[str, SiteEntry]:
    check_site_id(site_id)
    if site_id in sites:
        raise EnrolmentError(f"site {site_id!r} exists already (rotate-token gives it a new token)")
    digest = hash_token(token)
    if any(s.token_sha256 == digest for s in sites.values()):  # a token given twice by hand
        raise EnrolmentError("another site has this token")
    return {**sites, site_id: SiteEntry(site_id, digest, ())}


def with_devices(sites: Mapping[str, SiteEntry], site_id: str, devices: Iterable[str]) -> tuple[dict[str, SiteEntry], list[str]]:
    """Enrol `devices` at `site_id`; returns the new sites and the devices that were not
    enrolled before (enrolling one again changes nothing). A printer enrolled at another
    site is refused: a printer's records belong to one site."""
    site = _site(sites, site_id)
    wanted = sorted({check_device_id(d) for d in devices})
    elsewhere = {d: s.site_id for s in sites.values() if s.site_id != site_id for d in s.devices if d in wanted}
    if elsewhere:
        shown = ", ".join(f"{d} (at {s})" for d, s in sorted(elsewhere.items()))
        raise EnrolmentError(f"printer(s) enrolled at another site: {shown}; revoke them there first")
    added = [d for d in wanted if d not in site.devices]
    return {**sites, site_id: replace(site, devices=tuple(sorted({*site.devices, *added})))}, added


def without_devices(sites: Mapping[str, SiteEntry], site_id: str, devices: Iterable[str]) -> dict[str, SiteEntry]:
    """Revoke `devices` at `site_id`. A printer not enrolled there is refused (likely a
    typo, and revoking it would do nothing), and then nothing is revoked."""
    site = _site(sites, site_id)
    wanted = set(devices)
    missing = sorted(wanted - set(site.devices))
    if missing:
        raise EnrolmentError(f"not enrolled at site {site_id!r}: {', '.join(missing)}")
    return {**sites, site_id: replace(site, devices=tuple(d for d in site.devices if d not in wanted))}


def with_token(sites: Mapping[str, SiteEntry], site_id: str, token: str) -> dict[str, SiteEntry]:
    return {**sites, site_id: replace(_site(sites, site_id), token_sha256=hash_token(token))}


def without_site(sites: Mapping[str, SiteEntry], site_id: str) -> dict[str, SiteEntry]:
    _site(sites, site_id)
    if len(sites) == 1:  # the gateway refuses to load a file without sites
        raise EnrolmentError(f"site {site_id!r} is the only site; the gateway needs at least one")
    return {k: v for k, v in sites.items() if k != site_id}


# --- the edits on the file -------------------------------------------------------------


@dataclass(frozen=True)
class SitesFile:
    """The sites file at `path`, edited under its lock; each method is one edit."""

    path: Path

    def sites(self, site_id: str | None = None) -> list[SiteEntry]:
        """All sites sorted by id, or the one named (EnrolmentError when there is none)."""
        if not self.path.exists():
            raise EnrolmentError(f"no sites file at {self.path} (printfleet sites add creates it)")
        sites = read_sites(self.path)
        if site_id is not None:
            return [_site(sites, site_id)]
        return sorted(sites.values(), key=lambda s: s.site_id)

    def add_site(self, site_id: str) -> str:
        """Add a site without printers; returns its new token (the file has only its digest)."""
        token = new_token()
        self._edit(lambda sites: (with_new_site(sites, site_id, token), None))
        return token

    def enrol(self, site_id: str, devices: Iterable[str]) -> list[str]:
        """Enrol printers; returns those that were not enrolled before."""
        wanted = list(devices)
        return self._edit(lambda sites: with_devices(sites, site_id, wanted))

    def revoke(self, site_id: str, devices: Iterable[str]) -> None:
        wanted = list(devices)
        self._edit(lambda sites: (without_devices(sites, site_id, wanted), None))

    def rotate_token(self, site_id: str) -> str:
        """A new token for the site; the old one works until the gateway reloads the file."""
        token = new_token()
        self._edit(lambda sites: (with_token(sites, site_id, token), None))
        return token

    def remove_site(self, site_id: str) -> None:
        self._edit(lambda sites: (without_site(sites, site_id), None))

    def _edit(self, change: Callable[[dict[str, SiteEntry]], tuple[dict[str, SiteEntry], T]]) -> T:
        try:
            with exclusive_lock(self.path):
                before = read_sites(self.path)
                after, result = change(before)
                if after != before:
                    write_atomically(self.path, render_sites(after.values()))
                return result
        except OSError as exc:  # the lock file, or the directory's fsync
            raise EnrolmentError(f"sites file {self.path}: {exc}") from None
