"""`printfleet`: the one command. Subcommands live in `printfleet/cmd_*.py`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from printfleet import compiled

# Before the commands import the modules it serves.
compiled.install()

from printfleet import cmd_bench, cmd_collector, cmd_demo, cmd_gateway, cmd_simulate, cmd_sink, cmd_stack, cmd_worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printfleet",
        description="Telemetry pipeline for fleets of industrial 3D printers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cmd_stack, cmd_demo, cmd_simulate, cmd_collector, cmd_gateway, cmd_worker, cmd_sink, cmd_bench):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
