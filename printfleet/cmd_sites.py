"""`printfleet sites add|enrol|revoke|list|rotate-token|remove`: edit the gateway's sites
file. The edits themselves are producers/gateway/enrolment.py; this module parses the
command line and prints. A running gateway takes an edit at its next reload (a change of
the file, within --sites-reload-s, or SIGHUP).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from producers.errors import EnrolmentError
from producers.gateway.enrolment import SitesFile

ENV = "PRINTFLEET_GATEWAY_SITES_FILE"  # the gateway's own variable: one file for both


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "sites", help="add sites, enrol and revoke printers, rotate tokens: edit the gateway's sites file",
        description="Edits the sites file atomically, under a lock; a running gateway reloads it when it "
                    "changes (--sites-reload-s) or on SIGHUP.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        p.add_argument("--sites-file", type=Path,
                       help=f"the gateway's sites file (or {ENV}); `add` creates it when missing")
        return p

    p = action("add", "add a site without printers; prints its new token once")
    p.add_argument("site_id", metavar="SITE_ID")
    p = action("enrol", "enrol printers (their UUIDs) at a site; enrolling one again changes nothing")
    p.add_argument("site_id", metavar="SITE_ID")
    p.add_argument("devices", metavar="DEVICE_ID", nargs="+")
    p = action("revoke", "revoke printers of a site: the gateway refuses their records after its reload")
    p.add_argument("site_id", metavar="SITE_ID")
    p.add_argument("devices", metavar="DEVICE_ID", nargs="+")
    p = action("list", "list the sites and their printers")
    p.add_argument("site_id", metavar="SITE_ID", nargs="?")
    p.add_argument("--format", choices=("table", "json"), default="table", help="default table")
    p = action("rotate-token", "give a site a new token, printed once; the old one stops working at the "
                               "gateway's next reload")
    p.add_argument("site_id", metavar="SITE_ID")
    p = action("remove", "remove a site with its printers")
    p.add_argument("site_id", metavar="SITE_ID")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path = args.sites_file or (Path(os.environ[ENV]) if os.environ.get(ENV) else None)
    if path is None:
        print(f"printfleet sites: --sites-file is required (or {ENV}), e.g. --sites-file sites.toml",
              file=sys.stderr)
        return 2
    sites = SitesFile(path)
    try:
        return _act(args, sites)
    except EnrolmentError as exc:
        print(f"printfleet sites {args.action}: {exc}", file=sys.stderr)
        return 1


def _act(args: argparse.Namespace, sites: SitesFile) -> int:
    if args.action == "add":
        _show_token(args.site_id, sites.add_site(args.site_id), f"site {args.site_id} added to {sites.path}")
    elif args.action == "rotate-token":
        _show_token(args.site_id, sites.rotate_token(args.site_id),
                    f"site {args.site_id}: new token in {sites.path}; the old one works until the gateway reloads it")
    elif args.action == "enrol":
        added = sites.enrol(args.site_id, args.devices)
        already = len(set(args.devices)) - len(added)
        print(f"site {args.site_id}: {len(added)} printer(s) enrolled"
              + (f", {already} enrolled already" if already else ""))
    elif args.action == "revoke":
        sites.revoke(args.site_id, args.devices)
        print(f"site {args.site_id}: {len(set(args.devices))} printer(s) revoked")
    elif args.action == "remove":
        sites.remove_site(args.site_id)
        print(f"site {args.site_id} removed from {sites.path}")
    else:
        _list(sites, args.site_id, args.format)
    return 0


def _show_token(site_id: str, token: str, done: str) -> None:
    # The token alone on stdout, so that `TOKEN=$(printfleet sites add ...)` takes it; the
    # rest on stderr. It is shown this once: the file keeps only its sha256.
    print(done, file=sys.stderr)
    print(token, flush=True)
    print(f"This token is shown once. Put it in site {site_id}'s collector config (site.toml):\n"
          f"    site_id = \"{site_id}\"\n    [gateway]\n    token = \"<the token above>\"", file=sys.stderr)


def _list(sites: SitesFile, site_id: str | None, fmt: str) -> None:
    entries = sites.sites(site_id)
    if fmt == "json":
        print(json.dumps([{"site_id": e.site_id, "token_sha256": e.token_sha256, "devices": list(e.devices)}
                          for e in entries], indent=2))
        return
    width = max([len("SITE"), *(len(e.site_id) for e in entries)])
    print(f"{'SITE':<{width}}  PRINTERS  TOKEN_SHA256")
    for e in entries:
        print(f"{e.site_id:<{width}}  {len(e.devices):>8}  {e.token_sha256[:12]}...")
        for device in e.devices:
            print(f"{'':<{width}}    {device}")
