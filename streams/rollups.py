"""The site and benchmark roll-ups of a worker's partitions (no I/O).

Two internal JSON topics, partitioned like the telemetry (6 partitions; the owner of a
partition reads it), carry what the device agent hands on:

    <app id>-windows-by-site   key: site id. A printer's utilisation window with its
                               model, or a model change `{"site_id", "device_id",
                               "model_number"}` (no window).
    <app id>-sites-by-cohort   key: `<model>|<day start>`. A site's day roll-up of the
                               model's printers: `{"cohort", "site"}`.

Per site the printers' windows are summed (a printer's newer version of a window replaces
its older one) into `aggregates.utilisation.site`, and each site's day per printer model
goes on to its cohort; per cohort the sites' days make the `aggregates.benchmark` record
once k sites are in. The states live with the partition's other states and are committed
in its transaction (`streams.device_agent`), keyed `site/<id>/<window>/<device>` and
`cohort/<key>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from common.kafka.topics import SITE_UTILISATION, topic_for
from streams import anonymous_benchmark as benchmarks
from streams import site_rollup
from streams.anonymous_benchmark import BenchmarkSettings, Cohort
from streams.partition_transactions import Outgoing
from streams.plain import copied
from streams.site_rollup import SiteUtilisation, SiteWindows

SITE_KEY, COHORT_KEY = "site/", "cohort/"
Handed = tuple[str, dict[str, Any]]  # (key, message) for the cohort topic
Changelog = dict[str, bytes | None]  # key -> value, None a tombstone


class Rollups:
    """The site and cohort states of one partition: decoded when first needed, and the
    changelog writes since the last commit.

    A site's state is written one printer's window per key, `site/<site>/<start>:<end>/
    <device>`, and a window that leaves the site's state is tombstoned key by key: a value
    stays at one small record whatever the size of the site, where one value per site
    outgrew a Kafka message after half a day at 150 printers (docs/soak.md). Site ids
    hold no "/" (the gateway's enrolment pattern); a device id may, so it is the rest of
    the key. A cohort lives `keep_days` after its day, then is tombstoned."""

    def __init__(self, stored: Mapping[str, bytes], settings: BenchmarkSettings) -> None:
        self._stored_sites: dict[str, dict[str, bytes]] = {}  # site -> "<window>/<device>" (or "") -> value
        for key, value in stored.items():
            if key.startswith(SITE_KEY):
                site, _, rest = key.removeprefix(SITE_KEY).partition("/")
                self._stored_sites.setdefault(site, {})[rest] = value
        self._stored_cohorts = {k.removeprefix(COHORT_KEY): v for k, v in stored.items() if k.startswith(COHORT_KEY)}
        self._sites: dict[str, SiteWindows] = {}
        self._cohorts: dict[str, dict[str, Any]] = {}
        self._settings = settings
        self._writes: Changelog = {}
        self._dirty_cohorts: set[str] = set()

    def site_window(self, record: Mapping[str, Any]) -> tuple[list[Outgoing], list[Handed]]:
        """Apply a printer's window or model change to its site: the site's record of the
        window and what goes on to the cohorts."""
        site, device = str(record["site_id"]), str(record["device_id"])
        before = self._site(site)
        if "window_start" not in record:
            state, changed = site_rollup.set_model(before, device, str(record["model_number"]))
            self._set_site(site, before, state, device, [f"{start}:{end}" for start, end in changed])
            return [], [h for start, end in changed for h in _to_cohorts(site_rollup.by_model(state, start, end))]
        state, site_record, models = site_rollup.step(before, record)
        self._set_site(site, before, state, device, [f"{record['window_start']}:{record['window_end']}"])
        return [(SITE_UTILISATION, site, ("utilisation", site_record))], _to_cohorts(models)

    def cohort_site(self, message: Mapping[str, Any]) -> list[Outgoing]:
        """A site's day in its cohort; the cohort's benchmark once k sites are in. A day
        older than the cohorts kept is not taken: its cohort may be gone, and a benchmark
        of the sites that come after would replace the one published."""
        key, site = str(message["cohort"]), message["site"]
        model, start = key.rsplit("|", 1)
        horizon = self._horizon(int(start))
        if int(start) < horizon:
            return []
        self._drop_cohorts_before(horizon)
        members = {**self._cohort(key), str(site["site_id"]): site}
        self._cohorts[key] = members
        self._dirty_cohorts.add(key)
        cohort = Cohort(model, None, int(start), int(start) + benchmarks.DAY_MS)
        record = benchmarks.from_sites(cohort, [SiteUtilisation.from_dict(v) for _, v in sorted(members.items())],
                                       self._settings)
        return [] if record is None else [(topic_for("benchmark"), key, ("benchmark", record))]

    def take_dirty(self) -> Changelog:
        """The changelog writes since the last call (None: a tombstone); clears them."""
        out = self._writes
        out.update({COHORT_KEY + key: json.dumps(self._cohorts[key]).encode()
                    for key in self._dirty_cohorts if key in self._cohorts})
        self._writes, self._dirty_cohorts = {}, set()
        return out

    def _site(self, site: str) -> SiteWindows:
        state = self._sites.get(site)
        if state is None:
            state = self._sites[site] = self._load_site(site, self._stored_sites.pop(site, {}))
        return state

    def _load_site(self, site: str, stored: dict[str, bytes]) -> SiteWindows:
        legacy = stored.pop("", None)  # one value per site: written before 2026-12
        state = SiteWindows.from_json(legacy) if legacy is not None else SiteWindows(site_id=site)
        windows = {k: dict(v) for k, v in state.windows.items()}
        for rest, value in stored.items():
            window, _, device = rest.partition("/")
            windows.setdefault(window, {})[device] = json.loads(value)
        loaded = copied(state, site_id=site, windows=windows)
        if legacy is not None:  # rewritten key by key, in the same transaction as its tombstone
            self._writes[SITE_KEY + site] = None
            for window, printers in windows.items():
                self._writes.update({_site_key(site, window, d): json.dumps(r).encode() for d, r in printers.items()})
        return loaded

    def _set_site(self, site: str, before: SiteWindows, after: SiteWindows, device: str, windows: Sequence[str]) -> None:
        self._sites[site] = after
        for window in windows:
            self._writes[_site_key(site, window, device)] = json.dumps(after.windows[window][device]).encode()
        for window in before.windows.keys() - after.windows.keys():
            self._writes.update({_site_key(site, window, d): None for d in before.windows[window]})

    def _cohort(self, key: str) -> dict[str, Any]:
        members = self._cohorts.get(key)
        if members is None:
            stored = self._stored_cohorts.pop(key, None)
            members = json.loads(stored) if stored is not None else {}
        return members

    def _horizon(self, day_start: int) -> int:
        """The first day kept: `keep_days` before the newest cohort day of the partition."""
        days = (int(k.rsplit("|", 1)[1]) for k in (*self._cohorts, *self._stored_cohorts))
        newest = max(days, default=day_start)
        return max(newest, day_start) - (self._settings.keep_days - 1) * benchmarks.DAY_MS

    def _drop_cohorts_before(self, horizon: int) -> None:
        for key in [k for k in (*self._cohorts, *self._stored_cohorts) if int(k.rsplit("|", 1)[1]) < horizon]:
            self._cohorts.pop(key, None)
            self._stored_cohorts.pop(key, None)
            self._dirty_cohorts.discard(key)
            self._writes[COHORT_KEY + key] = None


def _site_key(site: str, window: str, device: str) -> str:
    return f"{SITE_KEY}{site}/{window}/{device}"


def _to_cohorts(models: Sequence[tuple[str, SiteUtilisation]]) -> list[Handed]:
    """Day roll-ups only: the benchmark is per model and day."""
    out = []
    for model, rolled in models:
        if rolled.window_end - rolled.window_start == benchmarks.DAY_MS:
            key = f"{model}|{rolled.window_start}"
            out.append((key, {"cohort": key, "site": rolled.to_dict()}))
    return out
