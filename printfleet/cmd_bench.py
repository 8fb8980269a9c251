"""`printfleet bench NAME`: the benchmarks; each prints figures and ratios to a baseline.

The benchmarks live in the top-level `benchmarks/` of a source checkout and are not
installed: this command finds them beside the installed `printfleet` package (an
editable install, as `make bootstrap` makes) and says so when they are not there.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from printfleet.runtime import relax_gc

BENCHES = {
    "codec": ("benchmarks.codec", "Avro encode/decode against fastavro's own"),
    "ingest": ("benchmarks.ingest.main", "wire bytes, gateway records/s, collector CPU"),
    "streams": ("benchmarks.streams", "worker records/s against a bare consumer, alert latency"),
    "sink": ("benchmarks.sink", "sink rows/s against a direct insert"),
    "chaos": ("benchmarks.chaos", "the pipeline under random faults, compared record by record"),
    "security": ("benchmarks.security", "gateway and sink over SASL_SSL against PLAINTEXT"),
    "dashboard": ("benchmarks.dashboard", "fleet.state -> page latency, dashboard memory and CPU, 1,000 printers"),
    "opcua": ("benchmarks.opcua.main", "collector CPU, memory and LAN bytes per OPC UA machine against per printer-API printer"),
    "soak": ("benchmarks.soak.main", "a large fleet through the whole pipeline for a long time: lag, memory, exactly once"),
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench", help="run a benchmark: " + ", ".join(BENCHES),
        description="Benchmarks print figures and ratios to a baseline run in the same process. "
                    "They use their own topic prefix and database, never the user's data. "
                    "`printfleet bench NAME --help` lists a benchmark's options.",
    )
    names = parser.add_subparsers(dest="name", required=True, metavar="NAME")
    for name, (_, summary) in BENCHES.items():
        # The benchmark parses its own options (`printfleet.cli` hands over what is left).
        names.add_parser(name, help=summary, add_help=False).set_defaults(rest=[])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        module = load(BENCHES[args.name][0])
    except ModuleNotFoundError as exc:
        print(f"printfleet bench: {exc}", file=sys.stderr)
        return 2
    if args.name in ("sink", "security"):
        relax_gc()  # the sink runs in this process: as `printfleet sink` does (the baseline too)
    return int(module.run(args.rest))


def load(name: str) -> ModuleType:
    """Import a benchmark module from the checkout this `printfleet` was installed from.

    Raises ModuleNotFoundError with what to do when there is no such checkout.
    """
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "benchmarks" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not name.startswith(exc.name):
            raise
        raise ModuleNotFoundError(
            f"the benchmarks are not installed: run them from a source checkout "
            f"(git clone, then `make bootstrap`); {checkout} has no benchmarks/"
        ) from None
