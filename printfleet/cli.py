"""`printfleet`: the one command. Subcommands live in `printfleet/cmd_*.py`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

from printfleet import (
    cmd_bench,
    cmd_collector,
    cmd_demo,
    cmd_gateway,
    cmd_query,
    cmd_simulate,
    cmd_sink,
    cmd_stack,
    cmd_topics,
    cmd_worker,
)

COMMANDS = (cmd_stack, cmd_demo, cmd_simulate, cmd_collector, cmd_gateway, cmd_worker, cmd_sink, cmd_query, cmd_topics,
            cmd_bench)


def version() -> str:
    try:
        return metadata.version("printfleet")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printfleet",
        description="Telemetry pipeline for fleets of industrial 3D printers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (also after the command)")
    parser.add_argument("--version", action="version", version=f"printfleet {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():
        # SUPPRESS: a subcommand without -v must not reset the top-level one.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not hasattr(args, "rest"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if hasattr(args, "rest"):
        args.rest = [*args.rest, *rest]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
