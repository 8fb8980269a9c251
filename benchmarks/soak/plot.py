"""The soak's plot over time, one PNG: rates, lag per stage, latencies, CPU and RSS of
every process, spool depth of every collector. Headless (matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here or in CI; chosen before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.soak.sampler import Sample  # noqa: E402


def _group(name: str) -> str:
    """Ten collectors are one line each in the spool panel but a band in CPU and RSS:
    the largest of them is drawn, so the figure stays readable."""
    for prefix in ("collector-", "simulator-"):
        if name.startswith(prefix):
            return prefix.rstrip("-") + "s (max)"
    return name


def _by_group(samples: Sequence[Sample], attr: str) -> dict[str, list[float]]:
    names = sorted({_group(n) for s in samples for n in getattr(s, attr)})
    out: dict[str, list[float]] = {}
    for g in names:
        out[g] = [max((v for n, v in getattr(s, attr).items() if _group(n) == g), default=float("nan"))
                  for s in samples]
    return out


def draw(samples: Sequence[Sample], title: str, path: Path, warmup_s: float = 0.0) -> Path:
    """Minutes on the x axis count from the warm-up's end (negative: the warm-up)."""
    t = [(s.t - warmup_s) / 60 for s in samples]
    fig, axes = plt.subplots(3, 2, figsize=(14, 12), sharex=True)
    ax = axes[0][0]
    for label, attr in (("polled/s", "polled_per_s"), ("into Kafka/s", "in_per_s"), ("stored/s", "stored_per_s")):
        ax.plot(t, [getattr(s, attr) for s in samples], label=label)
    ax.set_title("records/s")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    for stage in samples[0].lag if samples else ():
        ax.plot(t, [s.lag.get(stage, 0.0) for s in samples], label=stage)
    ax.set_title("lag per stage (records)")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    for label, attr, k in (("heartbeat -> row p50", "heartbeat_latency_s", 0), ("heartbeat -> row p99", "heartbeat_latency_s", 1),
                           ("alert p50", "alert_latency_s", 0), ("alert p99", "alert_latency_s", 1)):
        ax.plot(t, [getattr(s, attr)[k] if getattr(s, attr) else float("nan") for s in samples],
                label=label, marker="." if attr == "alert_latency_s" else None,
                linestyle="none" if attr == "alert_latency_s" else "-")
    ax.set_title("latency (s)")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    for name, values in _by_group(samples, "cpu_pct").items():
        ax.plot(t, values, label=name)
    ax.set_title("CPU (% of one core)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[2][0]
    for name, values in _by_group(samples, "rss_mib").items():
        ax.plot(t, values, label=name)
    ax.set_title("RSS (MiB)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[2][1]
    for name in sorted({n for s in samples for n in s.spool_depth}):
        ax.plot(t, [s.spool_depth.get(name, float("nan")) for s in samples], label=name.removeprefix("collector-"))
    ax.set_title("spool depth per collector (records)")
    ax.legend(fontsize=7, ncol=2)
    for ax in axes[2]:
        ax.set_xlabel("minutes (before 0: the warm-up)")
    for row in axes:
        for ax in row:
            ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
