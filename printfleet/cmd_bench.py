"""`printfleet bench NAME`: the benchmarks; each prints figures and ratios to a baseline."""

from __future__ import annotations

import argparse
from typing import Any

from printfleet import compiled
from printfleet.runtime import relax_gc


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="run a benchmark: codec, ingest, streams or sink", add_help=False)
    parser.add_argument("name", choices=["codec", "ingest", "streams", "sink"], help="which benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of that benchmark (--help)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.name == "codec":
        from schemas import bench

        return bench.run(args.rest)
    if args.name == "ingest":
        from producers import bench_ingest

        return bench_ingest.run(args.rest)
    if args.name == "streams":
        from streams import bench as bench_streams

        print(f"Worker: {compiled.describe()}.", flush=True)
        return bench_streams.run(args.rest)
    if args.name == "sink":
        from sinks import bench as bench_sink

        relax_gc()  # the sink runs in this process: as `printfleet sink` does (the baseline too)
        return bench_sink.run(args.rest)
    raise AssertionError(args.name)
