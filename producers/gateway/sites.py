"""Which sites may upload, with which credential, for which devices (tenant isolation).

The gateway reads a TOML file:

    [sites.acme-berlin]
    token_sha256 = "9f86d0..."        # sha256 hex of the site's bearer token
    devices = ["0b6c...", "51d2..."]  # printer UUIDs enrolled for this site

Only the token's digest is stored, so the file itself is no credential.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Site:
    site_id: str
    token_sha256: str
    devices: frozenset[str]


@dataclass(frozen=True)
class SiteDirectory:
    sites: Mapping[str, Site]

    @classmethod
    def load(cls, path: Path) -> SiteDirectory:
        """Parse the sites file. Raises ValueError naming the file and the problem."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"sites file {path}: {exc}") from None
        sites = {}
        for site_id, entry in data.get("sites", {}).items():
            token = entry.get("token_sha256", "")
            if len(token) != 64:
                raise ValueError(f"sites file {path}: site {site_id!r} needs a 64-hex token_sha256")
            sites[site_id] = Site(site_id, token.lower(), frozenset(entry.get("devices", [])))
        if not sites:
            raise ValueError(f"sites file {path}: no [sites.<id>] entries")
        return cls(sites)

    @staticmethod
    def render(entries: Iterable[tuple[str, str, Iterable[str]]]) -> str:
        """TOML text for (site_id, token, devices) entries; used by the demo and tests."""
        out = []
        for site_id, token, devices in entries:
            out.append(f"[sites.{site_id}]")
            out.append(f'token_sha256 = "{hash_token(token)}"')
            out.append("devices = [" + ", ".join(f'"{d}"' for d in sorted(devices)) + "]")
            out.append("")
        return "\n".join(out)

    def authenticate(self, token: str) -> Site | None:
        """The site whose token this is, or None. Constant-time per comparison."""
        digest = hash_token(token)
        found = None
        for site in self.sites.values():
            if hmac.compare_digest(site.token_sha256, digest):
                found = site
        return found


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
