"""One machine behind the OPC UA driver's session (drivers/opcua.py): its nodes, the
values its subscription delivers, and the spooling of its events, jobs and snapshots,
each once (the cursors and the seen-ids memory). No session handling here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asyncua.common.node import Node

from producers.collector.device_sink import DeviceSink, SpoolItem
from producers.collector.drivers import opcua_mapping as mapping
from producers.spool.spool import RecordClass

EVENT_PAGE = 500  # events spooled per append (and cursor move)
# Event ids remembered per machine to drop what subscription and history both bring.
SEEN_EVENTS = 20_000
SEEN_JOBS = 1_000


@dataclass
class MachineNodes:
    """The nodes of one machine the driver reads or subscribes to."""

    machine: Node
    item_state: Node
    operation_mode: Node
    warm_up: Node | None  # optional nodes (OPC 40501-1, 40001-1): None where a machine lacks one
    orders: Node
    responses: Node
    power_on: Node | None
    operation: Node | None
    cycles: Node | None
    ident: dict[str, Node]
    # per feedstock entry: Identifier, Function, RemainingQuantity, ReadyForProduction
    feedstock: list[tuple[Node, Node, Node, Node]]


class Machine:
    """One machine: its sink, the values its subscription delivers, its cursors' state.
    Built once per browse name and kept across sessions (the seen-events memory too)."""

    def __init__(self, browse_name: str, sink: DeviceSink) -> None:
        self.browse_name = browse_name
        self.sink = sink
        self.nodes: MachineNodes | None = None
        self.state = mapping.MachineState()
        self.orders: list[mapping.JobOrder] = []
        self.responses: list[mapping.JobResponse] = []
        self.events: list[mapping.MachineEvent] = []  # delivered by the subscription, spooled next tick
        self.firmware = ""
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_jobs: OrderedDict[str, None] = OrderedDict()
        self._last_payload: dict[str, dict[str, Any]] = {}

    # -- the subscription's handler (asyncua calls these from its publish loop) --
    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        nodes = self.nodes
        if nodes is None:
            return
        if node.nodeid == nodes.item_state.nodeid:
            self.state = mapping.MachineState(mapping.text(val), self.state.operation_mode, self.state.warm_up)
        elif node.nodeid == nodes.operation_mode.nodeid:
            self.state = mapping.MachineState(self.state.item_state, mapping.text(val), self.state.warm_up)
        elif nodes.warm_up is not None and node.nodeid == nodes.warm_up.nodeid:
            self.state = mapping.MachineState(self.state.item_state, self.state.operation_mode, bool(val))
        elif node.nodeid == nodes.orders.nodeid:
            self.orders = [mapping.pick_job_order(entry) for entry in val or ()]
        elif node.nodeid == nodes.responses.nodeid:
            self.responses = [mapping.pick_job_response(entry) for entry in val or ()]

    def event_notification(self, event: Any) -> None:
        # Bounded by what the server publishes between two ticks (TICK_S).
        self.events.append(mapping.pick_event(event))

    def status_change_notification(self, status: Any) -> None:
        pass  # a lost session shows in the tick's probe read

    # -- spooling --
    async def spool_events(self, events: Sequence[mapping.MachineEvent], from_history: bool) -> None:
        """Spool the events not spooled before, in pages, each moving the cursor."""
        cursor = mapping.parse_cursor(self.sink.cursor("system_event"))
        if from_history:
            events = events[mapping.after_cursor([(e.time_ms, e.event_id) for e in events], cursor):]
        fresh = [e for e in events if e.event_id not in self._seen]
        for start in range(0, len(fresh), EVENT_PAGE):
            page = fresh[start:start + EVENT_PAGE]
            items = [self.sink.encode("system_event", mapping.system_event(e, self.firmware), ("event", e.event_id))
                     for e in page]
            last = page[-1]
            await self.sink.spool_page("system_event", items, mapping.cursor_text(last.time_ms, last.event_id))
            for e in page:
                _remember(self._seen, e.event_id, SEEN_EVENTS)

    async def spool_jobs(self) -> None:
        """Spool the finished jobs of JobOrderResponseList past the job cursor, once."""
        if self.nodes is None or not self.responses:
            return  # the list has not arrived yet
        finished = [r for r in self.responses if r.finished and r.completed_at is not None]
        cursor = mapping.parse_cursor(self.sink.cursor("job"))
        keys = [(int(r.completed_at or 0), r.job_id) for r in finished]
        fresh = [r for r in finished[mapping.after_cursor(keys, cursor):] if r.job_id not in self._seen_jobs]
        if not fresh:
            await self.sink.caught_up("job")
            return
        items: list[SpoolItem | None] = [self.sink.encode("job", mapping.job(r), ("jobs", r.job_id)) for r in fresh]
        last = fresh[-1]
        await self.sink.spool_page("job", items, mapping.cursor_text(int(last.completed_at or 0), last.job_id))
        for r in fresh:
            _remember(self._seen_jobs, r.job_id, SEEN_JOBS)
        await self.sink.caught_up("job")

    async def spool_snapshot(self, kind: str, payload: dict[str, Any], record_class: RecordClass) -> None:
        """Spool a snapshot unless it says what the last one said (its time aside)."""
        content = {k: v for k, v in payload.items() if k != "event_time"}
        if kind != "heartbeat" and self._last_payload.get(kind) == content:
            return
        await self.sink.spool_one(kind, payload, (kind, str(payload["event_time"])), record_class)
        self._last_payload[kind] = content


def _remember(seen: OrderedDict[str, None], key: str, bound: int) -> None:
    seen[key] = None
    while len(seen) > bound:
        seen.popitem(last=False)
