"""The fleet as the dashboard shows it: the newest fleet.state record of every printer,
the open alerts, and whether each printer is offline. Pure: no I/O, no clock of its own
(every call that needs the time is given `now_ms`).

Called by `dashboard.feed` for every record it reads and from its offline timer, and by
`dashboard.server` to answer requests. Each change returns what pages must be told, so
the feed sends exactly the changes and nothing else.

Ordering, so that a record read twice or late changes nothing:
- a printer's state: newest by event time (fleet.state is keyed by printer, so its
  records come in order; a replayed older one is ignored);
- an alert: newest by (event time, lifecycle step), as `printfleet alerts list` orders
  them; the alert is open until its CLEARED record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.alert_view import SEVERITIES, AlertFilter

Record = dict[str, Any]
LIFECYCLES: Final = ("UNKNOWN", "RAISED", "UPDATED", "CLEARED")


def is_offline(record: Mapping[str, Any], now_ms: int, offline_after_ms: int) -> bool:
    """Offline: the worker says UNREACHABLE, or nothing was heard of the printer for
    longer than `offline_after_ms` (the worker itself may be down)."""
    if record.get("status") == "UNREACHABLE":
        return True
    return now_ms - int(record.get("last_heartbeat_at") or 0) > offline_after_ms


def _alert_rank(record: Mapping[str, Any]) -> tuple[int, int]:
    lifecycle = str(record.get("lifecycle", "UNKNOWN"))
    return int(record["event_time"]), LIFECYCLES.index(lifecycle) if lifecycle in LIFECYCLES else 0


def alert_order(record: Mapping[str, Any]) -> tuple[int, int, str, str]:
    """Most serious first, then oldest raised first (as `printfleet alerts list`)."""
    severity = str(record.get("severity", "UNKNOWN"))
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
    return -rank, int(record.get("raised_at") or 0), str(record.get("device_id", "")), str(record.get("alert_id", ""))


@dataclass(slots=True)
class _Site:
    printers: dict[str, Record] = field(default_factory=dict)  # device_id -> newest fleet.state record
    told_offline: dict[str, bool] = field(default_factory=dict)  # device_id -> offline as pages were last told
    open_alerts: dict[str, Record] = field(default_factory=dict)  # alert_id -> newest lifecycle record
    open_per_device: Counter[str] = field(default_factory=Counter)


class Fleet:
    """Every site's printers and open alerts, in memory: one record per printer and per
    open alert, so memory grows with the fleet, never with time."""

    def __init__(self, offline_after_ms: int) -> None:
        self.offline_after_ms = offline_after_ms
        self._sites: dict[str, _Site] = {}

    @property
    def sites(self) -> list[str]:
        return sorted(self._sites)

    @property
    def printer_count(self) -> int:
        return sum(len(s.printers) for s in self._sites.values())

    def _site(self, site_id: str) -> _Site:
        site = self._sites.get(site_id)
        if site is None:
            site = self._sites[site_id] = _Site()
        return site

    def view(self, record: Mapping[str, Any], now_ms: int) -> Record:
        """The Printer of the HTTP contract (docs/dashboard.md): the record plus
        `offline`, `last_seen` and `open_alerts`."""
        site = self._sites.get(str(record["site_id"]))
        open_alerts = site.open_per_device[str(record["device_id"])] if site else 0
        return {**record, "offline": is_offline(record, now_ms, self.offline_after_ms),
                "last_seen": int(record.get("last_heartbeat_at") or 0), "open_alerts": open_alerts}

    def apply_state(self, record: Record, now_ms: int) -> Record | None:
        """Take a fleet.state record; the Printer to tell the site's pages, or None when
        the record is older than the one held (a replay)."""
        site_id, device_id = str(record["site_id"]), str(record["device_id"])
        site = self._site(site_id)
        held = site.printers.get(device_id)
        if held is not None and int(record["event_time"]) < int(held["event_time"]):
            return None
        site.printers[device_id] = record
        printer = self.view(record, now_ms)
        site.told_offline[device_id] = bool(printer["offline"])
        return printer

    def recheck_offline(self, now_ms: int) -> list[Record]:
        """The printers whose offline flag changed since pages were last told (by the
        clock alone: no record came), each as a Printer; remembers them as told."""
        changed = []
        for site in self._sites.values():
            for device_id, record in site.printers.items():
                offline = is_offline(record, now_ms, self.offline_after_ms)
                if site.told_offline.get(device_id) != offline:
                    site.told_offline[device_id] = offline
                    changed.append(self.view(record, now_ms))
        return changed

    def apply_alert(self, record: Record, now_ms: int) -> tuple[Record | None, Record | None]:
        """Take an alert lifecycle record. Returns (the record to tell the site's pages,
        or None for a record older than the one held; the printer's new Printer when its
        open-alert count changed, else None)."""
        site_id, device_id, alert_id = str(record["site_id"]), str(record["device_id"]), str(record["alert_id"])
        site = self._site(site_id)
        held = site.open_alerts.get(alert_id)
        if held is not None and _alert_rank(record) < _alert_rank(held):
            return None, None
        before = site.open_per_device[device_id]
        if record.get("lifecycle") == "CLEARED":
            if site.open_alerts.pop(alert_id, None) is not None:
                site.open_per_device[device_id] -= 1
                if site.open_per_device[device_id] <= 0:
                    del site.open_per_device[device_id]
        else:
            if held is None:
                site.open_per_device[device_id] += 1
            site.open_alerts[alert_id] = record
        printer = None
        if site.open_per_device[device_id] != before and device_id in site.printers:
            printer = self.view(site.printers[device_id], now_ms)
        return record, printer

    def printers(self, site_id: str, now_ms: int) -> list[Record]:
        """The site's Printers, by name then device id."""
        site = self._sites.get(site_id)
        if site is None:
            return []
        views = [self.view(r, now_ms) for r in site.printers.values()]
        return sorted(views, key=lambda p: (str(p.get("printer_name", "")), str(p["device_id"])))

    def printer(self, site_id: str, device_id: str, now_ms: int) -> Record | None:
        site = self._sites.get(site_id)
        record = site.printers.get(device_id) if site else None
        return self.view(record, now_ms) if record is not None else None

    def open_alerts(self, site_id: str, wanted: AlertFilter = AlertFilter()) -> list[Record]:
        """The site's open alerts that pass `wanted` (whose site, if any, must be
        `site_id`), most serious first."""
        site = self._sites.get(site_id)
        if site is None:
            return []
        return sorted((a for a in site.open_alerts.values() if wanted.matches(a)), key=alert_order)
