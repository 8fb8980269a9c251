"""Pure parts of `printfleet bench opcua`: one run's figures per device, medians over the
alternating runs, the ratios OPC UA / printer API, the collection check, the verdict and
the Markdown tables. No I/O; unit-tested in tests/unit/benchmarks/test_opcua_bench.py."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from benchmarks.ingest.report import fmt_int, fmt_num, markdown_table, ratio

PRINTER_API: Final = "printer-api"
OPCUA: Final = "opcua"
PROTOCOLS: Final = (PRINTER_API, OPCUA)
# A run "collected" when every device spooled something and the heartbeats per
# device-hour came within this share of what the cadence asks for.
HEARTBEAT_TOLERANCE: Final = 0.2


@dataclass(frozen=True)
class Sample:
    """What one measured window of one collector process read: raw, before any division."""

    protocol: str
    devices: int  # devices configured
    answered: int  # devices that had answered (a device id) at the end of the window
    seconds: float  # wall seconds of the window
    cpu_s: float  # CPU seconds (user + system) of the collector process in the window
    rss_bytes: int  # resident memory at the end of the window
    peak_rss_bytes: int  # VmHWM: the highest resident memory since the process started
    bytes_up: int  # collector -> devices in the window, as the relay counted
    bytes_down: int  # devices -> collector
    connections: int  # TCP connections the relay accepted in the window
    spooled: Mapping[str, int]  # records spooled in the window, by kind, all devices
    devices_spooling: int  # devices that spooled at least one record in the window
    kept_aside: int  # records the driver kept aside (unmappable) in the window, all devices
    poll_failures: int
    warmup_s: float
    steady: bool  # False: the warm-up ended on its time limit, not all devices answered
    simulator_cpu_s: float = 0.0  # the simulator process's CPU in the window: context, not compared
    profile: str = ""  # with --profile: the collector's top functions by own time in the window


@dataclass(frozen=True)
class Figures:
    """One run's figures per device (`Sample` divided out)."""

    protocol: str
    devices: int
    cpu_pct_per_device: float  # % of one core
    rss_mib: float
    rss_mib_per_device: float
    peak_rss_mib: float
    up_per_device_hour: float  # bytes
    down_per_device_hour: float
    lan_per_device_hour: float  # both ways
    records_per_device_hour: float  # spooled, all kinds
    heartbeats_per_device_hour: float


def device_hours(devices: int, seconds: float) -> float:
    if devices <= 0 or not seconds > 0:
        raise ValueError(f"need devices > 0 and seconds > 0, not {devices} and {seconds}")
    return devices * seconds / 3600.0


def figures(s: Sample) -> Figures:
    """Per device (CPU, memory) and per device-hour (bytes, records) of one window.
    Raises ValueError for an empty window or no devices."""
    hours = device_hours(s.devices, s.seconds)
    rss_mib = s.rss_bytes / 2**20
    return Figures(
        protocol=s.protocol, devices=s.devices,
        cpu_pct_per_device=s.cpu_s / s.seconds * 100.0 / s.devices,
        rss_mib=rss_mib, rss_mib_per_device=rss_mib / s.devices, peak_rss_mib=s.peak_rss_bytes / 2**20,
        up_per_device_hour=s.bytes_up / hours, down_per_device_hour=s.bytes_down / hours,
        lan_per_device_hour=(s.bytes_up + s.bytes_down) / hours,
        records_per_device_hour=sum(s.spooled.values()) / hours,
        heartbeats_per_device_hour=s.spooled.get("heartbeat", 0) / hours,
    )


def collection_problems(s: Sample, heartbeat_s: float) -> list[str]:
    """Why a run cannot count as having collected (empty: it did): a device that spooled
    nothing, or heartbeats per device-hour off the cadence by more than HEARTBEAT_TOLERANCE."""
    problems = []
    if s.devices_spooling < s.devices:
        problems.append(f"{s.devices - s.devices_spooling} of {s.devices} devices spooled nothing")
    expected = 3600.0 / heartbeat_s
    got = s.spooled.get("heartbeat", 0) / device_hours(s.devices, s.seconds)
    if abs(got - expected) > HEARTBEAT_TOLERANCE * expected:
        problems.append(f"{got:.0f} heartbeats per device-hour, expected {expected:.0f}")
    return problems


# The figures compared, in table order: (field, heading).
COMPARED: Final = (
    ("cpu_pct_per_device", "CPU % of one core per device"),
    ("rss_mib_per_device", "RSS MiB per device"),
    ("rss_mib", "RSS MiB (process)"),
    ("up_per_device_hour", "bytes up per device-hour"),
    ("down_per_device_hour", "bytes down per device-hour"),
    ("lan_per_device_hour", "LAN bytes per device-hour"),
    ("records_per_device_hour", "records per device-hour"),
)


def medians(runs: Sequence[Figures]) -> dict[str, float]:
    """The median of every compared figure over `runs` (of one protocol). Raises ValueError
    when `runs` is empty or mixes protocols."""
    if not runs:
        raise ValueError("no runs")
    if len({r.protocol for r in runs}) != 1:
        raise ValueError(f"runs of several protocols: {sorted({r.protocol for r in runs})}")
    return {name: statistics.median(getattr(r, name) for r in runs) for name, _ in COMPARED}


def ratios(opcua: Mapping[str, float], printer_api: Mapping[str, float]) -> dict[str, float]:
    """OPC UA / printer API for every compared figure (inf where the printer API's is 0)."""
    return {name: ratio(opcua[name], printer_api[name]) for name, _ in COMPARED}


def paired_ratios(runs: Sequence[Figures], name: str) -> list[float]:
    """OPC UA / printer API of figure `name` for each (printer API, OPC UA) pair of runs in
    the order they ran (A B A B ...); a trailing unpaired run is left out."""
    api = [r for r in runs if r.protocol == PRINTER_API]
    ua = [r for r in runs if r.protocol == OPCUA]
    return [ratio(getattr(b, name), getattr(a, name)) for a, b in zip(api, ua)]


def verdict(runs: Sequence[Figures], name: str, heading: str) -> str:
    """One line: which protocol costs less per device on figure `name`, by the ratio of
    the medians, and whether every pair of runs agrees. Fewer than three runs of each
    protocol give no verdict (the project's rule for benchmarks)."""
    api = [r for r in runs if r.protocol == PRINTER_API]
    ua = [r for r in runs if r.protocol == OPCUA]
    if min(len(api), len(ua)) < 3:
        return f"{heading}: no verdict, fewer than 3 runs of each protocol"
    r = ratio(medians(ua)[name], medians(api)[name])
    pairs = paired_ratios(runs, name)
    same_side = all(p > 1 for p in pairs) or all(p < 1 for p in pairs)
    cheaper = "OPC UA" if r < 1 else "printer API"
    spread = f"pairs {', '.join(fmt_num(p) for p in pairs)}"
    agree = "every pair agrees" if same_side else "the pairs disagree: within the noise"
    return f"{heading}: OPC UA / printer API = {fmt_num(r)} (median of each); {cheaper} costs less; {agree} ({spread})"


def runs_table(runs: Sequence[Figures], samples: Sequence[Sample]) -> str:
    """One row per run, in the order they ran."""
    rows = []
    for n, (f, s) in enumerate(zip(runs, samples), 1):
        rows.append((
            f"{n} {f.protocol}", f"{f.devices}", f"{s.seconds:.0f}", f"{s.cpu_s / s.seconds * 100:.1f}",
            fmt_num(f.cpu_pct_per_device), f"{f.rss_mib:.0f}", f"{f.peak_rss_mib:.0f}", fmt_num(f.rss_mib_per_device),
            fmt_int(f.up_per_device_hour), fmt_int(f.down_per_device_hour), fmt_int(s.connections),
            fmt_int(f.records_per_device_hour), fmt_int(f.heartbeats_per_device_hour), fmt_int(s.kept_aside),
            fmt_int(s.poll_failures), f"{s.warmup_s:.0f}{'' if s.steady else ' (not steady)'}",
            f"{s.simulator_cpu_s / s.seconds * 100:.0f}",
        ))
    return markdown_table(
        ["run", "devices", "window s", "CPU % (process)", "CPU % per device", "RSS MiB", "peak RSS MiB",
         "RSS MiB per device", "bytes up per device-h", "bytes down per device-h", "TCP conns",
         "records per device-h", "heartbeats per device-h", "kept aside", "poll failures", "warm-up s", "simulator CPU %"],
        rows, [False] + [True] * 16)


def medians_table(runs: Sequence[Figures]) -> str:
    """Medians per protocol and their ratio, one row per compared figure."""
    api = medians([r for r in runs if r.protocol == PRINTER_API])
    ua = medians([r for r in runs if r.protocol == OPCUA])
    r = ratios(ua, api)
    return markdown_table(
        ["figure", "printer API (median)", "OPC UA (median)", "OPC UA / printer API"],
        [(heading, fmt_num(api[name]), fmt_num(ua[name]), fmt_num(r[name])) for name, heading in COMPARED])
