"""The collector's drivers: one per printer, each speaking one protocol.

A driver talks to its device (when to ask, what to subscribe to, how to page, how to
resume) and hands every reading to the device's `DeviceSink` (producers/collector/
device_sink.py), which builds, de-duplicates and spools the records the same way for
every protocol. `site.toml` chooses the driver per printer (`driver = "printer-api"` or
`"opcua"`, producers/collector/config.py).

    printer_api.py   the printer API over HTTPS, polled by cadence and cursor
    opcua.py         OPC UA for Additive Manufacturing (OPC 40540): one session per server,
                     one device per machine in its Machines folder, by subscription
    opcua_machine.py one machine of that session: subscribed values, events and jobs once
    opcua_mapping.py OPC UA values -> printer API payloads (pure, allow-listed)
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from producers.collector.device_sink import PrinterStatus


class Driver(Protocol):
    """What the collector needs of a driver: built per printer in `Collector.start`, run
    until `stop` is set (it returns then, having spooled what it read; it never raises
    for a device that is away: that is counted in `status`), and its `status` read
    for the status page and the metrics at any time."""

    @property
    def name(self) -> str:
        """The driver's name in site.toml (`printer-api`, `opcua`)."""
        ...

    @property
    def statuses(self) -> list[PrinterStatus]:
        """Every device's status: one for a printer, one per machine behind an OPC UA
        server (the server's own until its machines are found)."""
        ...

    @property
    def status(self) -> PrinterStatus:
        """The device's health and counters, kept by its `DeviceSink`."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        ...
