"""`printfleet asyncapi`: write the AsyncAPI 3.0 document of the public topics.

The document is generated from the topic registry, the .avsc files and the release
catalogue's JSON Schema (`schemas.asyncapi`); docs/asyncapi.json is this command's
output, committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas.asyncapi import document
from printfleet.cli import version
from schemas import SchemaRegistry


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "asyncapi", help="write the AsyncAPI 3.0 document of the public Kafka topics (JSON)",
        description="Channels, keys, Avro payloads of every schema version, the single-object encoding, "
                    "the dead-letter headers and the release catalogue's JSON entries (a JSON Schema), from the "
                    "topic registry, the .avsc files and schemas/release.py.",
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file (default: standard output)")
    parser.set_defaults(handler=run)


def render(registry: SchemaRegistry, release: str) -> str:
    """The document as the committed docs/asyncapi.json spells it."""
    return json.dumps(document(registry, release), indent=2, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace) -> int:
    text = render(SchemaRegistry.load_default(), version())
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"printfleet asyncapi: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
