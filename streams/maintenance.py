"""Predictive maintenance: remaining useful life from a consumable's wear trend, and
layer durations that are anomalous against the printer's own recent history.

Called by `streams.alert_device` for every consumable or heartbeat record; the results
become alert conditions in `streams.alert_rules`. Pure; states are table values.

RUL: `add_reading` keeps a thinned series of (time, wear) readings per consumable
(at most one per `min_spacing_s`, the newest `max_points`), restarting when the item is
replaced (its id changes, or its wear jumps back). `predict` fits a least-squares line
and says when it crosses the end-of-life threshold, with a confidence in [0, 1]:
    r^2 of the fit  x  min(1, points / 8)  x  (0.5 + 0.5 * min(1, span / lead))
i.e. how straight the wear is, how many readings back it, and how far beyond the
observed span the line is extrapolated (span = time covered, lead = time to crossing).

Layer anomaly: the modified z-score 0.6745 (x - median) / MAD of the newest recent layer
duration against the printer's last `layer_history` readings **of the same job** (robust
to the occasional slow layer). Within a job, because print modes differ by up to 28 % in
speed and would make every new job look anomalous against the last one. `streak`
consecutive scores beyond `z_threshold` make it anomalous; as many below `z_clear` make
it normal again (hysteresis), so a value near the threshold does not flap an alert.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.plain import PlainState, copied

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class MaintenanceSettings:
    min_spacing_s: float = 3600.0
    max_points: int = 120  # 5 days of hourly readings
    min_points: int = 6
    reset_tolerance: float = 0.5  # a move against the trend larger than this is a replacement
    layer_history: int = 240  # recent-layer-duration readings kept (2 h of 30 s heartbeats)
    layer_min_history: int = 30
    layer_stats_every: int = 10  # readings between refreshes of the history's median/MAD
    z_threshold: float = 3.5  # Iglewicz-Hoaglin's usual cut-off
    z_clear: float = 2.0
    streak: int = 3


@dataclass(slots=True)
class TrendSeries(PlainState):
    """Readings of one consumable (e.g. printhead in slot 2), oldest first."""

    item_id: str = ""
    rising: bool = True  # wear rises (usage %, hours); False for a level that falls
    points: list[tuple[int, float]] = field(default_factory=list)


class Prediction(NamedTuple):
    crossing_at_ms: int | None  # None: the trend does not head for the threshold
    rate_per_day: float
    confidence: float
    current: float
    crossed: bool


def add_reading(
    series: TrendSeries, t_ms: int, value: float, item_id: str = "", settings: MaintenanceSettings = MaintenanceSettings()
) -> TrendSeries:
    """The series with a reading added (a new object). Readings not after the newest are
    ignored (replays, late arrivals: wear series only move forward)."""
    pts = series.points
    if pts and t_ms <= pts[-1][0]:
        return series
    replaced = bool(pts) and (
        (item_id and series.item_id and item_id != series.item_id)
        or (value < pts[-1][1] - settings.reset_tolerance if series.rising else value > pts[-1][1] + settings.reset_tolerance)
    )
    if replaced:
        return copied(series, item_id=item_id, points=[(t_ms, value)])
    if pts and len(pts) > 1 and t_ms - pts[-2][0] < settings.min_spacing_s * 1000:
        new = pts[:-1] + [(t_ms, value)]  # thin: the newest reading replaces a close one
    else:
        new = pts + [(t_ms, value)]
    return copied(series, item_id=item_id or series.item_id, points=new[-settings.max_points:])


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least squares value = slope * t + intercept over (t_ms, value); returns
    (slope per ms, intercept, r^2). Raises ValueError for fewer than 2 distinct times."""
    xs = [float(t - points[0][0]) for t, _ in points]
    ys = [v for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("need readings at two different times")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else (sxy * sxy) / (sxx * syy)
    return slope, my - slope * mx - slope * points[0][0], r2


def predict(series: TrendSeries, threshold: float, now_ms: int, settings: MaintenanceSettings = MaintenanceSettings()) -> Prediction | None:
    """When the wear line crosses `threshold`, or None with too few readings."""
    pts = series.points
    if len(pts) < settings.min_points or pts[-1][0] == pts[0][0]:
        return None
    slope, intercept, r2 = fit_line(pts)
    current = pts[-1][1]
    crossed = current >= threshold if series.rising else current <= threshold
    heading = slope > 0 if series.rising else slope < 0
    rate = slope * DAY_MS
    if crossed:  # when it did: the first reading past the threshold (stable, not "now")
        over = [t for t, v in pts if (v >= threshold if series.rising else v <= threshold)]
        return Prediction(over[0], rate, 1.0, current, True)
    if not heading:
        return Prediction(None, rate, 0.0, current, False)
    crossing = max(now_ms, round((threshold - intercept) / slope))
    span = pts[-1][0] - pts[0][0]
    lead = max(1, crossing - now_ms)
    confidence = r2 * min(1.0, len(pts) / 8) * (0.5 + 0.5 * min(1.0, span / lead))
    return Prediction(crossing, rate, max(0.0, min(1.0, confidence)), current, False)


@dataclass(slots=True)
class LayerHistory(PlainState):
    """Recent-layer-duration readings of one printer and the detector's state."""

    job_id: str = ""
    values: list[float] = field(default_factory=list)
    last_at: int = 0
    anomalous: bool = False
    run: int = 0  # consecutive readings disagreeing with `anomalous`
    # Median and MAD of `values`, refreshed every `layer_stats_every` readings: two sorts
    # of the whole history per heartbeat were the agent's largest cost, and one reading
    # moves neither statistic by much.
    median_s: float = 0.0
    mad_s: float = 0.0
    stats_age: int = 0


class LayerVerdict(NamedTuple):
    anomalous: bool
    changed: bool  # the verdict flipped with this reading
    z: float
    median_s: float
    value_s: float


def observe_layer_duration(
    history: LayerHistory, t_ms: int, value_s: float, job_id: str,
    settings: MaintenanceSettings = MaintenanceSettings(),
) -> tuple[LayerHistory, LayerVerdict | None]:
    """Score one recent-layer-duration reading of job `job_id` (from a PRINTING
    heartbeat), folding it into `history` in place (the heartbeat path, see
    `streams.device`); a new job returns a new history. The verdict is None while the
    job's history is too short or for a stale/zero reading; a new job ends an anomaly
    (verdict changed)."""
    if t_ms <= history.last_at or value_s <= 0:
        return history, None
    if job_id != history.job_id:
        fresh = LayerHistory(job_id=job_id, values=[value_s], last_at=t_ms)
        ended = LayerVerdict(False, True, 0.0, value_s, value_s) if history.anomalous else None
        return fresh, ended
    h = history
    h.last_at = t_ms
    values = h.values
    verdict = None
    if len(values) >= settings.layer_min_history:
        if h.median_s <= 0 or h.stats_age >= settings.layer_stats_every:
            ordered = sorted(values)
            h.median_s = med = _median(ordered)
            # Deviations of the sorted values fall, then rise: two runs, which sort in one merge.
            h.mad_s = _median(sorted([abs(v - med) for v in ordered])) or 1e-3 * med or 1e-3
            h.stats_age = 0
        h.stats_age += 1
        med, mad = h.median_s, h.mad_s
        z = 0.6745 * (value_s - med) / mad
        beyond = abs(z) > (settings.z_clear if h.anomalous else settings.z_threshold)
        h.run = h.run + 1 if beyond != h.anomalous else 0
        changed = h.run >= settings.streak
        if changed:
            h.anomalous, h.run = not h.anomalous, 0
        verdict = LayerVerdict(h.anomalous, changed, z, med, value_s)
    # Every reading joins the history: a lasting change of pace within the job becomes
    # the new normal instead of an alert that never clears.
    values.append(value_s)
    if len(values) > settings.layer_history:
        del values[: len(values) - settings.layer_history]
    return h, verdict


def _median(ordered: list[float]) -> float:
    """`statistics.median` of an already sorted list, without its sort and checks."""
    n = len(ordered)
    half = n // 2
    return ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
