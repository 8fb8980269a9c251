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
in its transaction (`streams.device_agent`), keyed `site/<id>` and `cohort/<key>`.
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
from streams.site_rollup import SiteUtilisation, SiteWindows

SITE_KEY, COHORT_KEY = "site/", "cohort/"
Handed = tuple[str, dict[str, Any]]  # (key, message) for the cohort topic


class Rollups:
    """The site and cohort states of one partition: decoded when first needed, and the
    keys changed since the last commit."""

    def __init__(self, stored: Mapping[str, bytes], settings: BenchmarkSettings) -> None:
        self._stored = {k: v for k, v in stored.items() if k.startswith((SITE_KEY, COHORT_KEY))}
        self._sites: dict[str, SiteWindows] = {}
        self._cohorts: dict[str, dict[str, Any]] = {}
        self._settings = settings
        self.dirty: set[str] = set()

    def site_window(self, record: Mapping[str, Any]) -> tuple[list[Outgoing], list[Handed]]:
        """Apply a printer's window or model change to its site: the site's record of the
        window and what goes on to the cohorts."""
        site = str(record["site_id"])
        state = self._site(site)
        if "window_start" not in record:
            state, changed = site_rollup.set_model(state, str(record["device_id"]), str(record["model_number"]))
            self._set_site(site, state)
            return [], [h for start, end in changed for h in _to_cohorts(site_rollup.by_model(state, start, end))]
        state, site_record, models = site_rollup.step(state, record)
        self._set_site(site, state)
        return [(SITE_UTILISATION, site, ("utilisation", site_record))], _to_cohorts(models)

    def cohort_site(self, message: Mapping[str, Any]) -> list[Outgoing]:
        """A site's day in its cohort; the cohort's benchmark once k sites are in."""
        key, site = str(message["cohort"]), message["site"]
        members = {**self._cohort(key), str(site["site_id"]): site}
        self._cohorts[key] = members
        self.dirty.add(COHORT_KEY + key)
        model, start = key.rsplit("|", 1)
        cohort = Cohort(model, None, int(start), int(start) + benchmarks.DAY_MS)
        record = benchmarks.from_sites(cohort, [SiteUtilisation.from_dict(v) for _, v in sorted(members.items())],
                                       self._settings)
        return [] if record is None else [(topic_for("benchmark"), key, ("benchmark", record))]

    def take_dirty(self) -> dict[str, bytes]:
        """The changed states as they go to the changelog; clears the list."""
        out = {}
        for key in self.dirty:
            if key.startswith(SITE_KEY):
                out[key] = self._sites[key.removeprefix(SITE_KEY)].to_json()
            else:
                out[key] = json.dumps(self._cohorts[key.removeprefix(COHORT_KEY)]).encode()
        self.dirty.clear()
        return out

    def _site(self, site: str) -> SiteWindows:
        state = self._sites.get(site)
        if state is None:
            stored = self._stored.pop(SITE_KEY + site, None)
            state = SiteWindows.from_json(stored) if stored is not None else SiteWindows(site_id=site)
        return state

    def _set_site(self, site: str, state: SiteWindows) -> None:
        self._sites[site] = state
        self.dirty.add(SITE_KEY + site)

    def _cohort(self, key: str) -> dict[str, Any]:
        members = self._cohorts.get(key)
        if members is None:
            stored = self._stored.pop(COHORT_KEY + key, None)
            members = json.loads(stored) if stored is not None else {}
        return members


def _to_cohorts(models: Sequence[tuple[str, SiteUtilisation]]) -> list[Handed]:
    """Day roll-ups only: the benchmark is per model and day."""
    out = []
    for model, rolled in models:
        if rolled.window_end - rolled.window_start == benchmarks.DAY_MS:
            key = f"{model}|{rolled.window_start}"
            out.append((key, {"cohort": key, "site": rolled.to_dict()}))
    return out
