"""`printfleet catalogue key|publish`: the maker's release catalogue.

    printfleet catalogue key --key maker.pem                  # made once (0600), maker.pub.pem beside it
    printfleet catalogue publish --key maker.pem release.json # signed, then written to the catalogue topic

The workers advise what they can verify with the public key (`printfleet worker
--release-key-file maker.pub.pem`). A release file holds one release or a list, each a
JSON object with the fields of `streams.advisories.Release`, unsigned.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from common.kafka.errors import KafkaLayerError
from printfleet import kafka_flags
from streams import catalogue_publisher
from streams.errors import StreamsError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "catalogue", help="make the maker's release-signing key, or sign and publish releases",
        description="The maker's release catalogue: `key` makes the signing key, `publish` signs releases and "
                    "writes them to the catalogue topic.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    key = actions.add_parser("key", help="make the Ed25519 signing key if there is none (mode 0600), with its "
                                         "public key beside it (<name>.pub.pem, for printfleet worker --release-key-file)")
    key.add_argument("--key", type=Path, required=True, help="where the maker's private key (PEM) is or goes")
    publish = actions.add_parser(
        "publish", help="sign the releases of a JSON file and write them to the catalogue topic",
        description="The file holds one release or a list, each a JSON object with model_number, advisory_type "
                    "(FIRMWARE or PRINT_PARAMETERS), version, released_at (ms since the epoch), summary and optionally "
                    "severity, material_type, release_notes_url, package_sha256; unsigned.",
    )
    publish.add_argument("release_file", type=Path, help="the releases (JSON)")
    publish.add_argument("--key", type=Path, required=True, help="the maker's Ed25519 private key (PEM)")
    kafka_flags.add_arguments(publish)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "key":
        try:
            catalogue_publisher.ensure_signing_key(args.key)
        except (OSError, ValueError) as exc:
            print(f"printfleet catalogue key: {exc}", file=sys.stderr)
            return 2
        print(f"signing key {args.key}; workers verify with {catalogue_publisher.public_key_file(args.key)}")
        return 0
    try:
        key = catalogue_publisher.load_private_key(args.key)
        releases = catalogue_publisher.releases_from_json(args.release_file.read_text())
        kafka = kafka_flags.settings(args)
    except (OSError, ValueError, TypeError) as exc:  # StreamsError's leaves here are ValueErrors
        print(f"printfleet catalogue publish: {exc}", file=sys.stderr)
        return 2
    try:
        published = asyncio.run(catalogue_publisher.publish_signed(kafka, releases, key))
    except (KafkaLayerError, StreamsError) as exc:
        print(f"printfleet catalogue publish: {exc}", file=sys.stderr)
        return 1
    for r in published:
        print(f"published {r.model_number} {r.advisory_type} {r.version} ({r.severity}) as {r.advisory_id}")
    return 0
