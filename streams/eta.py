"""Estimated time to completion of a printer's current job, from its heartbeats.

What "completion" means here (the fleet view's `estimated_remaining_s` and
`estimated_completion_at`): the end of the phase the printer is busy with for the
current job, as the front panel of these printers shows it:

- WARMING_UP, PRINTING: until the **last layer is fused** (the print completes). While
  printing: layers left x seconds per layer, where seconds per layer is this job's own
  rate, measured between heartbeats (an EWMA over layers, half-life `half_life_layers`,
  so it follows the slow drift of layer times but not a single slow layer). While warming
  up: the warm-up left plus layers x this printer's rate on earlier jobs.
- COOLING_DOWN: until the **build unit is cooled** and can be unpacked, as the printer
  itself estimates it (`cooling_remaining_s`).
- Anything else (idle, unloading, error): no estimate.

Cooling is not added to the print estimate: it varies by hours between jobs (3-5 h) and
may finish outside the printer when the operator swaps the build unit, so adding a guess
would make the print estimate worse without making the job estimate good.

Called by `streams.fleet_state.apply_heartbeat` for every new heartbeat. `observe`
changes the state in place, like every step on the heartbeat path (see `streams.device`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from streams.heartbeat import Heartbeat
from streams.plain import PlainState


@dataclass(frozen=True, slots=True)
class EtaSettings:
    half_life_layers: float = 50.0  # measured on the simulator: shorter follows drift better
    default_layer_s: float = 10.0  # before anything is known about a printer
    warmup_s: float = 900.0  # typical warm-up (10-20 min) when it started unseen
    prior_alpha: float = 0.3  # weight of the latest job in the printer's long-run rate
    min_layers_for_prior: int = 20  # a job this short says little about the printer


@dataclass(slots=True)
class EtaState(PlainState):
    """Per printer: the current job's measured layer rate and the printer's prior."""

    job_id: str = ""
    last_seen_ms: int = 0  # newest heartbeat folded in (older ones are stale)
    last_activity: str = ""
    ref_time_ms: int = 0  # heartbeat at which ref_layers was first seen
    ref_layers: int = 0
    sec_per_layer: float = 0.0  # this job's EWMA; 0 = not measured yet
    layers_measured: int = 0
    warmup_seen_ms: int = 0  # first heartbeat showing this job warming up; 0 = none
    printer_sec_per_layer: float = 0.0  # across earlier jobs; 0 = none yet


class Eta(NamedTuple):
    """`phase` is "printing" (until the last layer) or "cooling" (until unpackable)."""

    phase: str
    remaining_s: float
    completion_at_ms: int


def observe(s: EtaState, heartbeat: Mapping[str, Any], settings: EtaSettings = EtaSettings()) -> EtaState:
    """Fold `heartbeat` (a heartbeat record) into `s`, in place; returns `s`. Stale or
    repeated heartbeats (event time not after the newest seen) change nothing, so
    redelivery is harmless. The record is read whole before `s` changes."""
    return observe_heartbeat(s, Heartbeat.of(heartbeat), settings)


def estimate(state: EtaState, heartbeat: Mapping[str, Any], settings: EtaSettings = EtaSettings()) -> Eta | None:
    """The estimate at `heartbeat` (after `observe` folded it in), or None when the
    printer has no job phase with an end to estimate."""
    return estimate_heartbeat(state, Heartbeat.of(heartbeat), settings)


def observe_heartbeat(s: EtaState, r: Heartbeat, settings: EtaSettings = EtaSettings()) -> EtaState:
    """`observe`, for a heartbeat already read (the fleet state reads it once for both)."""
    t, job, activity, layers = r.t, r.job, r.activity, r.layers_done
    if t <= s.last_seen_ms:
        return s
    if job != s.job_id:
        if s.layers_measured >= settings.min_layers_for_prior and s.sec_per_layer > 0:
            prior = s.printer_sec_per_layer
            s.printer_sec_per_layer = (
                s.sec_per_layer if prior <= 0 else prior + settings.prior_alpha * (s.sec_per_layer - prior)
            )
        s.job_id, s.ref_time_ms, s.ref_layers = job, t, layers
        s.sec_per_layer, s.layers_measured, s.warmup_seen_ms = 0.0, 0, 0
    elif activity == "PRINTING" and s.last_activity == "PRINTING" and layers > s.ref_layers:
        # Only print-to-print intervals measure the rate: one that spans the end of
        # warm-up or the start of cooling would count idle time as layer time.
        dl = layers - s.ref_layers
        observed = (t - s.ref_time_ms) / 1000.0 / dl
        weight = 1.0 - 0.5 ** (dl / settings.half_life_layers)
        s.sec_per_layer = observed if s.sec_per_layer <= 0 else s.sec_per_layer + weight * (observed - s.sec_per_layer)
        s.layers_measured += dl
        s.ref_time_ms, s.ref_layers = t, layers
    elif not (activity == "PRINTING" and s.last_activity == "PRINTING" and layers == s.ref_layers):
        # While printing, the reference stays where the layer count last changed: moving
        # it on a heartbeat that saw no new layer would shorten the next interval and
        # bias the rate low. Any other heartbeat (warm-up, first print one) restarts it.
        s.ref_time_ms, s.ref_layers = t, layers
    if activity == "WARMING_UP" and job and s.warmup_seen_ms == 0:
        s.warmup_seen_ms = t
    s.last_seen_ms, s.last_activity = t, activity
    return s


def estimate_heartbeat(state: EtaState, r: Heartbeat, settings: EtaSettings = EtaSettings()) -> Eta | None:
    """`estimate`, for a heartbeat already read."""
    t, activity, job, done, total = r.t, r.activity, r.job, r.layers_done, r.layers_total
    prior = state.printer_sec_per_layer or settings.default_layer_s
    if activity == "COOLING_DOWN":
        cooling = r.cooling_remaining_s
        return _eta("cooling", cooling, t) if cooling > 0 else None
    if not job or total <= 0:
        return None
    if activity == "PRINTING":
        per_layer = state.sec_per_layer or r.recent_layer_duration_s or prior
        return _eta("printing", max(0, total - done) * per_layer, t)
    if activity == "WARMING_UP":
        seen = state.warmup_seen_ms if state.job_id == job and state.warmup_seen_ms else t
        warmup_left = max(0.0, settings.warmup_s - (t - seen) / 1000.0)
        return _eta("printing", warmup_left + total * prior, t)
    return None


def _eta(phase: str, remaining_s: float, t: int) -> Eta:
    remaining_s = max(0.0, remaining_s)
    return Eta(phase, remaining_s, t + round(remaining_s * 1000))
