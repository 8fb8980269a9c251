"""Codec bench: records/s and bytes per record, against bare fastavro and JSON.

Wired as `printfleet bench codec`; also `python -m benchmarks.codec`. For each kind it
encodes and decodes the same realistic sample records (`schemas.samples`) three ways in
one process, interleaved, and keeps each way's best run, because these machines are
noisy and only ratios measured side by side mean much:
- this codec's batch APIs (`encode_many`; `decode_many`, and `decode_records`, the typed
  topic consumers' hot path), and its one-record calls (`encode` / `decode`);
- bare fastavro, per record (`schemaless_writer` / `schemaless_reader` on the body alone,
  same parsed schema): the difference is what the single-object framing costs;
- JSON (orjson) of the same record, for size only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
from dataclasses import dataclass
from typing import Any, Callable, Final, Sequence

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from deploy.machine import describe
from schemas.kinds import KINDS
from schemas.registry import SchemaRegistry
from schemas.samples import sample_records

HEARTBEAT_RATE_TARGET: Final = 150_000  # records/s, encode and decode, one core
OVERHEAD_TARGET: Final = 0.10  # framing cost over bare fastavro
SIZE_TARGET: Final = 0.40  # Avro heartbeat bytes over JSON bytes


@dataclass(frozen=True, slots=True)
class KindResult:
    """One kind's figures; rates in records/s, sizes in mean bytes per record."""

    kind: str
    encode: float
    raw_encode: float
    decode: float
    decode_typed: float
    raw_decode: float
    encode_single: float
    decode_single: float
    message_bytes: float
    body_bytes: float
    json_bytes: float

    @property
    def encode_overhead(self) -> float:
        return self.raw_encode / self.encode - 1

    @property
    def decode_overhead(self) -> float:
        return self.raw_decode / self.decode - 1

    @property
    def decode_typed_overhead(self) -> float:
        return self.raw_decode / self.decode_typed - 1

    @property
    def size_ratio(self) -> float:
        return self.message_bytes / self.json_bytes


def _json_dumps() -> tuple[str, Callable[[Any], bytes]]:
    try:
        import orjson
    except ImportError:  # orjson is a test extra; the stdlib gives comparable sizes
        import json

        return "json (stdlib)", lambda r: json.dumps(r, separators=(",", ":")).encode()
    return "orjson", orjson.dumps


def measure(registry: SchemaRegistry, kind: str, records: int, repeats: int) -> KindResult:
    """Bench one kind. Called by `run`; tests call it with tiny counts."""
    samples = sample_records(kind, records)
    schema = registry.schema(kind)
    parsed = schema.parsed
    messages = registry.encode_many(kind, samples)
    bodies = [m[len(schema.header):] for m in messages]

    def raw_encode() -> object:
        out = []
        for record in samples:
            buffer = io.BytesIO()
            schemaless_writer(buffer, parsed, record)
            out.append(buffer.getvalue())
        return out

    def raw_decode() -> object:
        return [schemaless_reader(io.BytesIO(body), parsed, None) for body in bodies]

    ways: dict[str, Callable[[], object]] = {
        "raw_encode": raw_encode,
        "encode": lambda: registry.encode_many(kind, samples),
        "encode_single": lambda: [registry.encode(kind, r) for r in samples],
        "raw_decode": raw_decode,
        "decode": lambda: registry.decode_many(messages),
        "decode_typed": lambda: registry.decode_records(kind, messages),
        "decode_single": lambda: [registry.decode(m) for m in messages],
    }
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeats):
        for name, way in ways.items():
            gc.collect()
            start = time.perf_counter()
            way()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: records / seconds for name, seconds in best.items()}

    _, dumps = _json_dumps()
    decoded = registry.decode_many(messages)
    return KindResult(
        kind=kind,
        encode=rate["encode"],
        raw_encode=rate["raw_encode"],
        decode=rate["decode"],
        decode_typed=rate["decode_typed"],
        raw_decode=rate["raw_decode"],
        encode_single=rate["encode_single"],
        decode_single=rate["decode_single"],
        message_bytes=sum(map(len, messages)) / records,
        body_bytes=sum(map(len, bodies)) / records,
        json_bytes=sum(len(dumps(d.record)) for d in decoded) / records,
    )


def table(results: Sequence[KindResult], *, markdown: bool) -> list[str]:
    """The results as aligned text or as a Markdown table."""
    head = ("kind", "encode/s", "raw enc/s", "enc +%", "decode/s", "dec +%", "typed dec/s",
            "typed +%", "raw dec/s", "1-rec enc/s", "1-rec dec/s", "msg B", "body B", "json B",
            "msg/json")
    rows = [
        (r.kind, f"{r.encode:,.0f}", f"{r.raw_encode:,.0f}", f"{r.encode_overhead:+.1%}",
         f"{r.decode:,.0f}", f"{r.decode_overhead:+.1%}", f"{r.decode_typed:,.0f}",
         f"{r.decode_typed_overhead:+.1%}", f"{r.raw_decode:,.0f}",
         f"{r.encode_single:,.0f}", f"{r.decode_single:,.0f}", f"{r.message_bytes:,.0f}",
         f"{r.body_bytes:,.0f}", f"{r.json_bytes:,.0f}", f"{r.size_ratio:.0%}")
        for r in results
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    fmt = "  ".join(["{:<%d}" % widths[0]] + ["{:>%d}" % w for w in widths[1:]])
    return [fmt.format(*head)] + [fmt.format(*row) for row in rows]


def targets(heartbeat: KindResult) -> list[tuple[str, bool]]:
    """The issue's heartbeat targets, each with whether it is met."""
    r = heartbeat
    return [
        (f"heartbeat encode >= {HEARTBEAT_RATE_TARGET:,}/s: {r.encode:,.0f}/s", r.encode >= HEARTBEAT_RATE_TARGET),
        (f"heartbeat decode_many >= {HEARTBEAT_RATE_TARGET:,}/s: {r.decode:,.0f}/s",
         r.decode >= HEARTBEAT_RATE_TARGET),
        (f"heartbeat decode_records >= {HEARTBEAT_RATE_TARGET:,}/s: {r.decode_typed:,.0f}/s",
         r.decode_typed >= HEARTBEAT_RATE_TARGET),
        (f"framing overhead <= {OVERHEAD_TARGET:.0%} (encode): {r.encode_overhead:+.1%}",
         r.encode_overhead <= OVERHEAD_TARGET),
        (f"framing overhead <= {OVERHEAD_TARGET:.0%} (decode_many): {r.decode_overhead:+.1%}",
         r.decode_overhead <= OVERHEAD_TARGET),
        (f"framing overhead <= {OVERHEAD_TARGET:.0%} (decode_records): {r.decode_typed_overhead:+.1%}",
         r.decode_typed_overhead <= OVERHEAD_TARGET),
        (f"Avro heartbeat <= {SIZE_TARGET:.0%} of JSON: {r.message_bytes:.0f} B of {r.json_bytes:.0f} B "
         f"= {r.size_ratio:.0%}", r.size_ratio <= SIZE_TARGET),
    ]


def profile(registry: SchemaRegistry, kind: str, records: int) -> None:
    """Print where encode_many and decode_many spend their time (cProfile, top 12)."""
    samples = sample_records(kind, records)
    messages = registry.encode_many(kind, samples)
    for label, call in (("encode_many", lambda: registry.encode_many(kind, samples)),
                        ("decode_many", lambda: registry.decode_many(messages))):
        profiler = cProfile.Profile()
        profiler.runcall(call)
        print(f"\n-- profile of {kind} {label}, {records} records")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printfleet bench codec",
        description="Records/s and bytes per record of the Avro single-object codec, per kind, "
        "against bare fastavro (same process) and JSON.",
    )
    parser.add_argument("--records", type=int, default=1_000, metavar="N",
                        help="records per kind and run (default 1000)")
    parser.add_argument("--repeats", type=int, default=9, metavar="R",
                        help="runs per measurement; the best counts (default 9)")
    parser.add_argument("--kinds", default=",".join(KINDS), metavar="K[,K...]",
                        help="kinds to bench (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--profile", action="store_true",
                        help="also profile encode_many/decode_many of the first kind")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a heartbeat target is missed")
    return parser


def run(argv: list[str] | None = None) -> int:
    """CLI entry point. Returns the exit status: 0, or 1 with --strict and a missed target,
    or 2 for bad arguments (argparse exits by itself for those)."""
    parser = _parser()
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or args.records < 1 or args.repeats < 1:
        parser.error(f"unknown kinds {unknown}" if unknown else "--records and --repeats must be >= 1")
    registry = SchemaRegistry.load_default()
    json_name, _ = _json_dumps()
    print(f"codec bench: {args.records} records x {args.repeats} runs per kind, best run; "
          f"{describe()}, fastavro {fastavro.__version__}")
    print(f"JSON sizes by {json_name}; msg B includes the 10-byte single-object header\n")
    results = [measure(registry, kind, args.records, args.repeats) for kind in kinds]
    for line in table(results, markdown=args.markdown):
        print(line)
    met = True
    heartbeat = next((r for r in results if r.kind == "heartbeat"), None)
    if heartbeat is not None:
        print("\ntargets:")
        for text, ok in targets(heartbeat):
            met = met and ok
            print(f"  {'MET   ' if ok else 'MISSED'} {text}")
    if args.profile:
        profile(registry, kinds[0], args.records)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    raise SystemExit(run())
