"""Pure helpers of `printfleet bench ingest`: targets, unit arithmetic, cadence scaling,
the real-time upload-round model, verdicts and Markdown tables. No I/O; unit-tested in
tests/unit/benchmarks/test_ingest_bench.py."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Final

from producers.collector.config import Cadence

SITE_LINK_KBIT_S: Final = 5_000.0  # the paper's site uplink, 5 Mbit/s
SITE_SHARE: Final = 0.005  # telemetry may use under 0.5 % of it
SITE_BUDGET_KBIT_S: Final = SITE_LINK_KBIT_S * SITE_SHARE  # 25 kbit/s for the whole site
PRINTER_TARGET_KBIT_S: Final = 1.0
GATEWAY_TARGET_RECORDS_S: Final = 50_000.0
PARTS: Final = ("wire", "gateway", "collector")
# Records the collector reads by cursor: uploaded in the poll round after they happened.
PAGED_KINDS: Final = frozenset({"system_event", "job", "device_log"})
MET, MISSED = "MET", "MISSED"


def parse_parts(text: str) -> tuple[str, ...]:
    """`wire,gateway` -> ("wire", "gateway") in PARTS order; `all` -> PARTS. Raises ValueError."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return PARTS
    unknown = sorted(set(names) - set(PARTS))
    if unknown or not names:
        raise ValueError(f"unknown part(s) {unknown or [text]}; choose from {', '.join(PARTS)} or all")
    return tuple(p for p in PARTS if p in names)


def scaled_cadence(cadence: Cadence, acceleration: float) -> Cadence:
    """Every period divided by `acceleration`: against a simulator running `acceleration`
    times faster, the collector then polls exactly as often per simulated hour."""
    if not acceleration > 0:
        raise ValueError(f"acceleration must be > 0, not {acceleration}")
    return Cadence(**{f.name: getattr(cadence, f.name) / acceleration for f in fields(cadence)})


# Record kinds whose number per hour follows from the cadence alone: kind -> Cadence field.
CADENCE_KINDS: Final = {
    "heartbeat": "heartbeat_s",
    "usage_counters": "counters_s",
    "cleaning_roll": "consumables_s",
    "agent_system": "consumables_s",
    "printhead_system": "consumables_s",
    "build_unit": "consumables_s",
    "device_identity": "identity_s",
}


def records_per_hour(cadence: Cadence) -> dict[str, float]:
    """Records per printer and hour of each cadence-driven kind (a poll yields one each)."""
    return {kind: 3600.0 / getattr(cadence, name) for kind, name in CADENCE_KINDS.items()}


def cadence_factors(counts: Mapping[str, int], printer_hours: float, cadence: Cadence) -> dict[str, float]:
    """expected / counted for each cadence-driven kind that was counted, 1.0 for the rest:
    the factors that bring a run whose polls came late up to the full cadence."""
    expected = records_per_hour(cadence)
    return {
        kind: (expected[kind] * printer_hours / n if kind in expected and n else 1.0)
        for kind, n in counts.items()
    }


def kbit_s(n_bytes: float, seconds: float) -> float:
    """Bytes over seconds as kbit/s (1 kbit = 1,000 bits)."""
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, not {seconds}")
    return n_bytes * 8 / seconds / 1000.0


def per_printer_kbit_s(n_bytes: float, printers: int, hours: float) -> float:
    """Bytes that `printers` printers caused in `hours` as kbit/s of one printer."""
    return kbit_s(n_bytes, printers * hours * 3600.0)


def verdict(value: float, target: float, *, at_most: bool) -> str:
    """MET when value <= target (`at_most`) or value >= target, else MISSED."""
    return MET if (value <= target if at_most else value >= target) else MISSED


def ratio(a: float, b: float) -> float:
    """a / b, or infinity when b is 0 (a baseline that measured nothing)."""
    return a / b if b else float("inf")


def cpu_percent(cpu_s_before: float, cpu_s_after: float, wall_s: float) -> float:
    """CPU time used between two samples as % of one core over `wall_s` wall seconds."""
    if not wall_s > 0:
        raise ValueError(f"wall_s must be > 0, not {wall_s}")
    return (cpu_s_after - cpu_s_before) / wall_s * 100.0


@dataclass(frozen=True, slots=True)
class Uploaded:
    """One record as the gateway received it: what the round model groups."""

    kind: str
    device_id: str
    event_time_ms: int


def upload_rounds(records: Sequence[Uploaded], round_ms: int = 1_000) -> list[list[int]]:
    """Indexes of `records` grouped into the uploads a collector running in real time
    would have made: one per `round_ms` of simulated time that holds any record (the
    uploader's idle poll is 1 s, so in real time it sends what one second spooled).

    A cadence record (heartbeat, counters, ...) belongs to the second of its event_time,
    which is its poll time. A paged record (event, job snapshot, log) happened earlier and
    was read in its printer's next poll round: it joins the second of that printer's first
    heartbeat at or after its event_time (the last one if none follows).
    """
    ticks: dict[str, list[int]] = defaultdict(list)
    for r in records:
        if r.kind == "heartbeat":
            ticks[r.device_id].append(r.event_time_ms)
    for times in ticks.values():
        times.sort()
    rounds: dict[int, list[int]] = defaultdict(list)
    for index, r in enumerate(records):
        moment = r.event_time_ms
        polls = ticks.get(r.device_id)
        if r.kind in PAGED_KINDS and polls:
            at = bisect.bisect_left(polls, moment)
            moment = polls[min(at, len(polls) - 1)]
        rounds[moment // round_ms].append(index)
    return [rounds[key] for key in sorted(rounds)]


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_num(value: float, digits: int = 3) -> str:
    """Three significant figures-ish: 0.0123, 1.23, 12.3, 1,234."""
    if value == float("inf"):
        return "inf"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.{digits}g}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] | None = None) -> str:
    """A Markdown table; `numeric` columns are right-aligned (default: all but the first)."""
    numeric = numeric if numeric is not None else [i > 0 for i in range(len(headers))]
    if len(numeric) != len(headers):
        raise ValueError("numeric needs one flag per column")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)} has {len(row)} cells, headers {len(headers)}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
