"""`printfleet`: the one command. Subcommands live in `printfleet/cmd_*.py`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from common import logs

# Subcommands in the order `--help` lists them. A site collector install has only the
# collector's dependencies; a command whose extra is not installed says which it needs.
COMMANDS = ("stack", "demo", "simulate", "collector", "gateway", "sites", "worker", "sink", "query", "alerts", "dashboard",
            "topics", "asyncapi", "bench")
EXTRA_OF = {"chdb": "stack"}  # any other missing package comes with the cloud extra


def version() -> str:
    try:
        return metadata.version("printfleet")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printfleet",
        description="Telemetry pipeline for fleets of industrial 3D printers.",
        allow_abbrev=False,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (anywhere on the command line)")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=os.environ.get("PRINTFLEET_LOG_FORMAT", "text"),
                        help="log lines as text or JSON objects, one per line (default text; PRINTFLEET_LOG_FORMAT)")
    parser.add_argument("--version", action="version", version=f"printfleet {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"printfleet.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] in OWN_PACKAGES:
                raise
            _unavailable(sub, name, exc.name)
            continue
        module.register(sub)
    for command in sub.choices.values():
        # A flag is spelt out: an abbreviation can change meaning when a flag is added
        # (`--kafka-sasl-password` once meant `--kafka-sasl-password-file`).
        command.allow_abbrev = False
        # SUPPRESS: a subcommand without -v must not reset the top-level one.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument("--log-format", choices=logs.FORMATS, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


OWN_PACKAGES = frozenset({"printfleet", "common", "schemas", "producers", "streams", "sinks", "deploy", "benchmarks",
                          "dashboard"})


def _needs_extra(command: str, missing: str) -> str:
    extra = EXTRA_OF.get(missing.split(".")[0], "cloud")
    return f"printfleet {command} needs the '{extra}' extra ({missing} is not installed): pip install 'printfleet[{extra}]'"


def _unavailable(sub: Any, name: str, missing: str) -> None:
    extra = EXTRA_OF.get(missing.split(".")[0], "cloud")
    message = _needs_extra(name, missing)
    parser = sub.add_parser(name, help=f"(needs pip install 'printfleet[{extra}]')", add_help=False)
    parser.set_defaults(handler=lambda args: _refuse(message), rest=[])


def _refuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not hasattr(args, "rest"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if hasattr(args, "rest"):  # a benchmark's own options; -v stays ours
        args.verbose = args.verbose or any(a in ("-v", "--verbose") for a in rest)
        args.rest = [*args.rest, *(a for a in rest if a not in ("-v", "--verbose"))]
    if args.log_format not in logs.FORMATS:  # from PRINTFLEET_LOG_FORMAT: argparse checks flags only
        parser.error(f"PRINTFLEET_LOG_FORMAT={args.log_format!r}: one of {', '.join(logs.FORMATS)}")
    logs.configure(verbose=args.verbose, log_format=args.log_format)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `printfleet query ... | head`: the reader has all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return 0
    except ModuleNotFoundError as exc:  # a command that imports its extra's packages late
        if exc.name is None or exc.name.split(".")[0] in OWN_PACKAGES:
            raise
        return _refuse(_needs_extra(args.command, exc.name))


if __name__ == "__main__":
    sys.exit(main())
