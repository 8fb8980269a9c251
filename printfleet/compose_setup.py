"""Prepare the configuration of deploy/compose/compose.yaml: one simulated site and the cloud.

Not a subcommand: run once by the compose file's `setup` service (the cloud image, as
root so that it can hand the volumes to the image's user, uid 10001) before anything else
starts:

    python -m printfleet.compose_setup --secrets /run/secrets \
        --cloud /out/cloud --site /out/site --site-ca /out/site-ca --spool /out/spool

Writes:

    <cloud>/ca.pem, ca-key.pem            the cloud CA (the collector trusts it for the gateway)
    <cloud>/server.pem, server-key.pem    the gateway's certificate, for the DNS name `gateway`
    <cloud>/sites.toml                    the site's token digest and its printers' UUIDs
    <site-ca>/ca.pem, ca-key.pem          the site CA, reused by `printfleet simulate --ca-dir`
    <site>/site.toml                      the collector's configuration
    <site>/gateway-ca.pem, printers-ca.pem  copies of the two CA certificates it needs

The printers' UUIDs come from the simulated fleet that PRINTFLEET_SIM_PRINTERS and
PRINTFLEET_SIM_SEED describe, the same variables the simulator service reads, so the
gateway enrols exactly the printers the collector will find. The site token and secret
come from the secret files `site_token` and `site_secret`. Running it again reuses both
CAs and rewrites the rest. Nothing here is needed outside the compose file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from producers.collector.config import Cadence, CollectorSettings, render
from producers.gateway.sites import SiteDirectory
from common.tls import ensure_site_ca, issue_server_certificate
from producers.simulator.fleet import Fleet
from producers.simulator.settings import SimulatorSettings

IMAGE_USER = 10001  # the images' user printfleet (deploy/container/Dockerfile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secrets", type=Path, required=True, help="folder with site_token and site_secret")
    parser.add_argument("--cloud", type=Path, required=True, help="the gateway's configuration volume")
    parser.add_argument("--site", type=Path, required=True, help="the collector's configuration volume")
    parser.add_argument("--site-ca", type=Path, required=True, help="the simulator's CA volume")
    parser.add_argument("--spool", type=Path, help="the collector's state volume (only handed to the user)")
    parser.add_argument("--site-id", default="compose-site")
    parser.add_argument("--gateway-url", default="https://gateway:18444")
    parser.add_argument("--simulator-url", default="https://simulator:18443")
    parser.add_argument("--state-dir", default="/var/lib/printfleet/collector",
                        help="the spool's folder as the collector container sees it")
    parser.add_argument("--owner", type=int, default=IMAGE_USER, help="uid and gid to hand the volumes to (-1: keep)")
    args = parser.parse_args(argv)
    token = _secret(args.secrets / "site_token")
    site_secret = _secret(args.secrets / "site_secret")
    for folder in (args.cloud, args.site, args.site_ca):
        folder.mkdir(parents=True, exist_ok=True)

    cloud_ca = ensure_site_ca(args.cloud, "printfleet cloud")
    issue_server_certificate(cloud_ca, args.cloud, ips=("127.0.0.1",), dns=("gateway", "localhost"))
    site_ca = ensure_site_ca(args.site_ca, SimulatorSettings.from_env().site_name)

    sim = SimulatorSettings.from_env(ca_dir=args.site_ca)
    printers = Fleet(sim).truth()["printers"]
    devices = [p["printer_uuid"] for p in printers]
    (args.cloud / "sites.toml").write_text(SiteDirectory.render([(args.site_id, token, devices)]))

    shutil.copyfile(cloud_ca.cert_file, args.site / "gateway-ca.pem")
    shutil.copyfile(site_ca.cert_file, args.site / "printers-ca.pem")
    collector = CollectorSettings(
        site_id=args.site_id, site_secret=site_secret, state_dir=Path(args.state_dir),
        gateway_url=args.gateway_url, gateway_token=token,
        gateway_ca_file=Path("gateway-ca.pem"), printer_ca_file=Path("printers-ca.pem"),
        printer_urls=tuple(f"{args.simulator_url}/printers/{p['printer_id']}/" for p in printers),
        cadence=Cadence(),
    )
    site_toml = args.site / "site.toml"
    site_toml.write_text(render(collector))
    site_toml.chmod(0o600)  # it holds the token and the site secret
    if args.owner >= 0:
        for folder in (args.cloud, args.site, args.site_ca, *([args.spool] if args.spool else [])):
            _hand_over(folder, args.owner)
    print(f"setup: site {args.site_id}, {len(devices)} printers enrolled; {site_toml}, {args.cloud / 'sites.toml'}")
    return 0


def _secret(path: Path) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SystemExit(f"setup: cannot read the secret {path}: {exc.strerror}") from None
    if not value:
        raise SystemExit(f"setup: the secret {path} is empty")
    return value


def _hand_over(folder: Path, owner: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder, *folder.rglob("*")):
        os.chown(path, owner, owner)


if __name__ == "__main__":
    sys.exit(main())
