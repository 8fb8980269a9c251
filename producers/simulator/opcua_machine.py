"""One simulated printer as an AdditiveManufacturingType instance in Machinery's Machines
folder: builds its nodes once, then writes what `opcua_view` says on every tick.

Owned by `opcua_server.OpcUaServer`, which builds one `MachineNodes` per OPC UA printer
after loading the nodesets, and calls `update()` from its tick. Values are written only
when they changed, so subscribers get a data change per real change, not per tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Mapping

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from producers.opcua_model import names
from producers.simulator import opcua_view as view
from producers.simulator.printer import Printer

# UNECE common codes as OPC UA EUInformation (Part 8 §5.6.3): UnitId = the code's bytes.
_CEFACT: Final = "http://www.opcfoundation.org/UA/units/un/cefact"
_UNITS: Final = {"kg": ("KGM", "kilogram"), "%": ("P1", "percent")}


def eu_information(symbol: str) -> ua.EUInformation:
    code, description = _UNITS[symbol]
    return ua.EUInformation(
        NamespaceUri=_CEFACT,
        UnitId=int.from_bytes(code.encode("ascii"), "big"),
        DisplayName=ua.LocalizedText(symbol),
        Description=ua.LocalizedText(description),
    )


def ua_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


@dataclass(frozen=True, slots=True)
class ModelContext:
    """What every machine needs from the loaded model: namespace indices, the
    simulator's namespace, and the NodeIds of the state machines' states by name."""

    ns: Mapping[str, int]
    sim: int
    item_states: Mapping[str, ua.NodeId]
    mode_states: Mapping[str, ua.NodeId]

    def qn(self, name: names.Name) -> ua.QualifiedName:
        return names.resolve(name, self.ns)

    def structure(self, published: names.PublishedId) -> Any:
        """The class asyncua generated for a structure when the nodesets were loaded."""
        return ua.extension_objects_by_datatype[names.node_id(published, self.ns)]


async def build_context(server: Server) -> ModelContext:
    """Called once after the nodesets are loaded."""
    ns = await names.namespace_indices(server)
    sim = await server.register_namespace(names.SIMULATOR_URI)
    ns = {**ns, names.SIMULATOR_URI: sim}

    async def states(machine_type: names.PublishedId, wanted: tuple[str, ...]) -> dict[str, ua.NodeId]:
        type_node = server.get_node(names.node_id(machine_type, ns))
        return {
            state: (await type_node.get_child(names.resolve(names.Name(names.MACHINERY_URI, state), ns))).nodeid
            for state in wanted
        }

    item = await states(
        names.MACHINERY_ITEM_STATE_TYPE,
        (names.ITEM_EXECUTING, names.ITEM_NOT_EXECUTING, names.ITEM_NOT_AVAILABLE, names.ITEM_OUT_OF_SERVICE),
    )
    mode = await states(
        names.MACHINERY_OPERATION_MODE_TYPE,
        (names.MODE_NONE, names.MODE_MAINTENANCE, names.MODE_SETUP, names.MODE_PROCESSING),
    )
    return ModelContext(ns, sim, item, mode)


class MachineNodes:
    """The nodes of one machine and the last values written to them."""

    def __init__(self, server: Server, ctx: ModelContext, printer_id: str, node: Node) -> None:
        self.server = server
        self.ctx = ctx
        self.printer_id = printer_id
        self.node = node
        self._vars: dict[str, Node] = {}
        self._written: dict[str, Any] = {}
        self._jobs_key: tuple[Any, ...] | None = None
        self._job_file: Node | None = None
        self._job_file_name: str | None = None

    # -- building -------------------------------------------------------------------------

    @classmethod
    async def create(cls, server: Server, ctx: ModelContext, printer: Printer) -> MachineNodes:
        """Instantiate AdditiveManufacturingType under Machines (NodeId and browse name
        <sim>:<printer id>, display name the printer's name) and add what
        asyncua's instantiation leaves out (docs/opcua.md, "asyncua quirks")."""
        machines = server.get_node(names.node_id(names.MACHINES_FOLDER, ctx.ns))
        am_type = names.node_id(names.ADDITIVE_MANUFACTURING_TYPE, ctx.ns)
        # NodeId ns=<sim>;s=<printer id>: stable whatever the order machines are built in;
        # asyncua names the instantiated children "<printer id>.<browse name>...".
        node = await machines.add_object(
            names.make_node_id(printer.printer_id, ctx.sim), ua.QualifiedName(printer.printer_id, ctx.sim),
            objecttype=am_type,
        )
        await node.write_attribute(
            AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(printer.printer_name)))
        )
        self = cls(server, ctx, printer.printer_id, node)
        await self._share_building_blocks()
        await self._add_missing()
        await self._add_feedstocks(view.feedstocks(printer, printer.now_ms))
        await self._add_job_file()
        await self._index()
        return self

    async def _add_job_file(self) -> None:
        # One FileType object in FileSystem/WorkMasters, renamed to the job file the
        # printer holds (a file name is private: a collector must never browse here).
        folder = await self._child(names.WORK_MASTER_FILES)
        self._job_file = await folder.add_object(
            self._nid("JobFile"), ua.QualifiedName("(none)", self.ctx.sim), objecttype=ObjectIds.FileType
        )

    async def _child(self, path: tuple[names.Name, ...]) -> Node:
        return await self.node.get_child(names.path(self.ctx.ns, path))

    async def _share_building_blocks(self) -> None:
        # MachineToolType declares MachineryItemState, MachineryOperationMode and
        # OperationCounters once and references them from both Monitoring/MachineTool and
        # MachineryBuildingBlocks; asyncua instantiates them twice. Keep the Monitoring
        # copies and let MachineryBuildingBlocks reference them, as the model means.
        blocks = await self._child((names.JOB_MANAGEMENT[0],))
        monitoring = await self._child(names.MONITORING_MACHINE_TOOL)
        for name in (names.MACHINERY_ITEM_STATE[-1], names.MACHINERY_OPERATION_MODE[-1], names.OPERATION_COUNTERS[-1]):
            qn = self.ctx.qn(name)
            copy = await blocks.get_child(qn)
            # Only the parent refers to the copy: drop that reference and the copy's
            # subtree, instead of asyncua's scan of every node for references (~0.3 s
            # per node once the nodesets are loaded).
            await blocks.delete_reference(copy, ObjectIds.HasAddIn, forward=True, bidirectional=False)
            await copy.delete(delete_references=False, recursive=True)
            await blocks.add_reference(
                await monitoring.get_child(qn), ObjectIds.HasAddIn, forward=True, bidirectional=True
            )

    def _nid(self, *parts: str) -> ua.NodeId:
        return names.make_node_id(".".join((self.printer_id,) + parts), self.ctx.sim)

    async def _add_missing(self) -> None:
        ctx = self.ctx
        counters = await self._child(names.OPERATION_COUNTERS)
        await counters.add_property(
            self._nid("Counters", names.OPERATION_DURATION.name), ctx.qn(names.OPERATION_DURATION),
            ua.Variant(0.0, ua.VariantType.Double), datatype=names.make_node_id(ObjectIds.Duration, 0),
        )
        await counters.add_property(
            self._nid("Counters", names.OPERATION_CYCLE_COUNTER.name), ctx.qn(names.OPERATION_CYCLE_COUNTER),
            ua.Variant(0, ua.VariantType.UInt32), datatype=names.make_node_id(ObjectIds.UInt32, 0),
        )
        monitoring = await self._child(names.MONITORING_MACHINE_TOOL)
        await monitoring.add_variable(
            self._nid("IsWarmUp"), ctx.qn(names.IS_WARM_UP), ua.Variant(False, ua.VariantType.Boolean)
        )
        results = await self._child(names.JOB_ORDER_RESULTS)
        response_list = await results.add_variable(
            self._nid("JobOrderResponseList"),
            ctx.qn(names.JOB_ORDER_RESPONSE_LIST[-1]),
            ua.Variant([], ua.VariantType.ExtensionObject),
            datatype=names.node_id(names.ISA95_JOB_RESPONSE, ctx.ns),
        )
        await response_list.write_value_rank(ua.ValueRank.OneDimension)

    async def _add_feedstocks(self, entries: list[view.Feedstock]) -> None:
        folder = await self._child(names.FEEDSTOCK_LIST)
        feedstock_type = names.node_id(names.AM_FEEDSTOCK_TYPE, self.ctx.ns)
        for entry in entries:
            await folder.add_object(
                self._nid("Feedstock", entry.key), ua.QualifiedName(entry.key, self.ctx.sim), objecttype=feedstock_type
            )

    async def _index(self) -> None:
        """Find once every variable `update()` writes, by a short key."""
        n = names
        ident = await self._child(n.IDENTIFICATION)
        for name in (n.MANUFACTURER, n.MODEL, n.PRODUCT_CODE, n.SERIAL_NUMBER, n.SOFTWARE_REVISION,
                     n.PRODUCT_INSTANCE_URI, n.COMPONENT_NAME, n.AM_TECHNOLOGY_IDENTIFIER):
            self._vars[f"ident.{name.name}"] = await ident.get_child(self.ctx.qn(name))
        for key, machine in (("item", n.MACHINERY_ITEM_STATE), ("mode", n.MACHINERY_OPERATION_MODE)):
            current = await self._child(machine + (n.CURRENT_STATE,))
            self._vars[f"{key}.state"] = current
            self._vars[f"{key}.id"] = await current.get_child(self.ctx.qn(n.STATE_ID))
        counters = await self._child(n.OPERATION_COUNTERS)
        for name in (n.POWER_ON_DURATION, n.OPERATION_DURATION, n.OPERATION_CYCLE_COUNTER):
            self._vars[f"counters.{name.name}"] = await counters.get_child(self.ctx.qn(name))
        self._vars["warmup"] = await self._child(n.MONITORING_MACHINE_TOOL + (n.IS_WARM_UP,))
        self._vars["mt_mode"] = await self._child(n.MONITORING_MACHINE_TOOL + (n.MT_OPERATION_MODE,))
        self._vars["orders"] = await self._child(n.JOB_ORDER_LIST)
        self._vars["responses"] = await self._child(n.JOB_ORDER_RESPONSE_LIST)
        control = await self._child(n.JOB_ORDER_CONTROL)
        self._vars["personnel"] = await control.get_child(self.ctx.qn(n.PERSONNEL_ID))
        self._vars["work_master"] = await control.get_child(self.ctx.qn(n.WORK_MASTER))
        self._vars["program"] = await self._child(n.ACTIVE_PROGRAM_NAME)
        folder = await self._child(n.FEEDSTOCK_LIST)
        for entry in await folder.get_children():
            key = (await entry.read_browse_name()).Name
            for name in (n.FEEDSTOCK_IDENTIFIER, n.FEEDSTOCK_NAME, n.FEEDSTOCK_FUNCTION, n.FEEDSTOCK_READY):
                self._vars[f"feed.{key}.{name.name}"] = await entry.get_child(self.ctx.qn(name))
            remaining = await entry.get_child(self.ctx.qn(n.FEEDSTOCK_REMAINING_QUANTITY))
            self._vars[f"feed.{key}.RemainingQuantity"] = remaining
            self._vars[f"feed.{key}.EngineeringUnits"] = await remaining.get_child(ua.QualifiedName("EngineeringUnits", 0))

    # -- writing ------------------------------------------------------------------------------

    async def _write(self, key: str, value: Any, vtype: ua.VariantType) -> None:
        if self._written.get(key, _UNSET) == value:
            return
        await self._vars[key].write_value(ua.Variant(value, vtype))
        self._written[key] = value

    async def update(self, printer: Printer, now: int) -> None:
        """Write the printer's state as of `now` (the printer is already advanced)."""
        S, L = ua.VariantType.String, ua.VariantType.LocalizedText
        ident = view.identification(printer)
        for key, value, vtype in (
            ("Manufacturer", ua.LocalizedText(ident.manufacturer), L),
            ("Model", ua.LocalizedText(ident.model), L),
            ("ProductCode", ident.product_code, S),
            ("SerialNumber", ident.serial_number, S),
            ("SoftwareRevision", ident.software_revision, S),
            ("ProductInstanceUri", ident.product_instance_uri, S),
            ("ComponentName", ua.LocalizedText(ident.component_name), L),
            ("AMTechnologyIdentifier", ident.am_technology, S),
        ):
            await self._write(f"ident.{key}", value, vtype)
        state = view.machine_state(printer.status, printer.activity)
        await self._write("item.state", ua.LocalizedText(state.item_state), L)
        await self._write("item.id", self.ctx.item_states[state.item_state], ua.VariantType.NodeId)
        await self._write("mode.state", ua.LocalizedText(state.operation_mode), L)
        await self._write("mode.id", self.ctx.mode_states[state.operation_mode], ua.VariantType.NodeId)
        await self._write("warmup", state.is_warm_up, ua.VariantType.Boolean)
        await self._write("mt_mode", state.machine_tool_mode, ua.VariantType.Int32)
        c = view.counters(printer, now)
        await self._write("counters.PowerOnDuration", c.power_on_duration_ms, ua.VariantType.Double)
        await self._write("counters.OperationDuration", c.operation_duration_ms, ua.VariantType.Double)
        await self._write("counters.OperationCycleCounter", c.operation_cycle_counter, ua.VariantType.UInt32)
        for f in view.feedstocks(printer, now):
            await self._write(f"feed.{f.key}.Identifier", f.identifier, S)
            await self._write(f"feed.{f.key}.Name", f.key, S)
            await self._write(f"feed.{f.key}.Function", f.function, ua.VariantType.Int32)
            await self._write(f"feed.{f.key}.ReadyForProduction", f.ready, ua.VariantType.Boolean)
            await self._write(f"feed.{f.key}.RemainingQuantity", f.remaining, ua.VariantType.Double)
            await self._write(f"feed.{f.key}.EngineeringUnits", eu_information(f.unit), ua.VariantType.ExtensionObject)
        await self._write_jobs(printer, now)

    async def _write_jobs(self, printer: Printer, now: int) -> None:
        # Rendering up to 50 job responses as ISA-95 structures every tick is the costly
        # part of a tick: do it only when something they show can have changed.
        job = printer.current
        key = (printer.snapshots.last_seq, len(printer.queue), job.job_id if job else "",
               job.status if job else "", job.layers_done(now) if job else 0)
        if self._jobs_key == key:
            return
        S = ua.VariantType.String
        orders = view.job_orders(printer, now)
        await self._write("orders", [self._job_order(o) for o in orders], ua.VariantType.ExtensionObject)
        running = orders[0] if orders and orders[0].state == view.RUNNING else None
        await self._write("personnel", job.user if running and job else "", S)
        await self._write("program", running.work_master_id if running else "", S)
        await self._write("work_master", [self._work_master(o) for o in orders], ua.VariantType.ExtensionObject)
        responses = view.job_responses(printer, now)
        await self._write("responses", [self._job_response(r) for r in responses], ua.VariantType.ExtensionObject)
        await self._rename_job_file(view.work_master_file(printer))
        self._jobs_key = key

    async def _rename_job_file(self, file_name: str | None) -> None:
        if file_name is None or file_name == self._job_file_name or self._job_file is None:
            return
        await self._job_file.write_attribute(
            AttributeIds.BrowseName, ua.DataValue(ua.Variant(ua.QualifiedName(file_name, self.ctx.sim)))
        )
        await self._job_file.write_attribute(AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText(file_name))))
        self._job_file_name = file_name

    # -- ISA-95 structures --------------------------------------------------------------------

    def _state(self, state: tuple[str, int], substate: str) -> list[Any]:
        cls = self.ctx.structure(names.ISA95_STATE)
        return [
            cls(StateText=ua.LocalizedText(state[0]), StateNumber=state[1]),
            cls(StateText=ua.LocalizedText(substate), StateNumber=0),
        ]

    def _param(self, pid: str, value: ua.Variant) -> Any:
        return self.ctx.structure(names.ISA95_PARAMETER)(ID=pid, Value=value)

    def _work_master(self, o: view.JobOrder) -> Any:
        return self.ctx.structure(names.ISA95_WORK_MASTER)(
            ID=o.work_master_id, Description=ua.LocalizedText(o.work_master_description)
        )

    def _job_order(self, o: view.JobOrder) -> Any:
        order = self.ctx.structure(names.ISA95_JOB_ORDER)(
            JobOrderID=o.job_order_id,
            Description=[ua.LocalizedText(o.description)],
            WorkMasterID=[self._work_master(o)],
            JobOrderParameters=[
                self._param(names.PARAM_JOB_NAME, ua.Variant([ua.LocalizedText(o.job_name)], ua.VariantType.LocalizedText)),
                self._param(names.PARAM_LAYERS_PLANNED, ua.Variant(o.layers_planned, ua.VariantType.UInt32)),
            ],
        )
        return self.ctx.structure(names.ISA95_JOB_ORDER_AND_STATE)(JobOrder=order, State=self._state(o.state, o.substate))

    def _job_response(self, r: view.JobResponse) -> Any:
        run = self.ctx.structure(names.AM_RUN_INFO_DATA_TYPE)(
            CurrentLayer=r.current_layer,
            Identifier=r.job_order_id,
            State=self._state(r.state, r.substate)[1],
        )
        material = self.ctx.structure(names.ISA95_MATERIAL)(
            MaterialDefinitionID=r.material,
            MaterialUse=names.MATERIAL_USE_CONSUMED,
            Quantity=f"{r.material_in_parts_kg:.3f}",
            EngineeringUnits=eu_information("kg"),
        )
        return self.ctx.structure(names.ISA95_JOB_RESPONSE)(
            JobResponseID=r.job_response_id,
            JobOrderID=r.job_order_id,
            StartTime=ua_time(r.start_ms) if r.start_ms is not None else None,
            EndTime=ua_time(r.end_ms) if r.end_ms is not None else None,
            JobState=self._state(r.state, r.substate),
            JobResponseData=[
                self._param(names.PARAM_JOB_NAME, ua.Variant([ua.LocalizedText(r.job_name)], ua.VariantType.LocalizedText)),
                self._param(names.PARAM_LAYERS_PLANNED, ua.Variant(r.layers_planned, ua.VariantType.UInt32)),
                self._param(names.PARAM_RUNS, ua.Variant([run], ua.VariantType.ExtensionObject)),
            ],
            MaterialActuals=[material],
        )


_UNSET: Final = object()
