"""Namespace URIs, browse names and published NodeIds of the OPC UA model printfleet serves
(simulator) and reads (the collector's OPC UA driver): the contract of docs/opcua.md.

Namespace *indices* differ from server to server (and from document to document), so
nothing here holds one: a `Name` is a namespace URI plus a name, and `resolve` turns it
into a `ua.QualifiedName` against one server's namespace array at run time. Published
numeric NodeIds are kept as (URI, number) pairs for the same reason.

    ns = await namespace_indices(client)                # URI -> index, read once
    machines = client.get_node(node_id(MACHINES_FOLDER, ns))
    ident = await machine.get_child(path(ns, IDENTIFICATION))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Mapping, Protocol

from asyncua import ua

# -- namespace URIs (as the NodeSet files spell them) -----------------------------------
UA_URI: Final = "http://opcfoundation.org/UA/"
DI_URI: Final = "http://opcfoundation.org/UA/DI/"
IA_URI: Final = "http://opcfoundation.org/UA/IA/"
MACHINERY_URI: Final = "http://opcfoundation.org/UA/Machinery/"
ISA95_JC_URI: Final = "http://opcfoundation.org/UA/ISA95-JOBCONTROL_V2/"
JOBS_URI: Final = "http://opcfoundation.org/UA/Machinery/Jobs/"
MACHINE_TOOL_URI: Final = "http://opcfoundation.org/UA/MachineTool/"
AM_URI: Final = "http://opcfoundation.org/UA/AdditiveManufacturing/"
# The simulator's own instances (machines, feedstock entries) live in a server-local
# namespace, never in a companion specification's.
SIMULATOR_URI: Final = "urn:printfleet:simulator:machines"


# Machinery's MachineryItemState states (40001-1 §12.2) and MachineryOperationMode states
# (§12.3): the simulator writes them, the collector's driver reads them back.
ITEM_EXECUTING: Final = "Executing"
ITEM_NOT_EXECUTING: Final = "NotExecuting"
ITEM_NOT_AVAILABLE: Final = "NotAvailable"
ITEM_OUT_OF_SERVICE: Final = "OutOfService"
MODE_NONE: Final = "None"
MODE_MAINTENANCE: Final = "Maintenance"
MODE_SETUP: Final = "Setup"
MODE_PROCESSING: Final = "Processing"


@dataclass(frozen=True, slots=True)
class Name:
    """A browse name independent of namespace indices."""

    uri: str
    name: str

    def __str__(self) -> str:
        return f"{self.uri}{self.name}"


@dataclass(frozen=True, slots=True)
class PublishedId:
    """A numeric NodeId as a specification publishes it: namespace URI + identifier."""

    uri: str
    number: int


class _HasNamespaceArray(Protocol):
    async def get_namespace_array(self) -> list[str]: ...


async def namespace_indices(endpoint: _HasNamespaceArray) -> dict[str, int]:
    """URI -> index from a Server's or Client's namespace array (one Read)."""
    return {uri: index for index, uri in enumerate(await endpoint.get_namespace_array())}


def resolve(name: Name, ns: Mapping[str, int]) -> ua.QualifiedName:
    """The QualifiedName of `name` on the server whose namespace indices are `ns`.
    Raises KeyError naming the URI when the server does not know the namespace."""
    return ua.QualifiedName(name.name, ns[name.uri])


def path(ns: Mapping[str, int], names: tuple[Name, ...]) -> list[ua.QualifiedName]:
    """A relative browse path (for `Node.get_child`) from names."""
    return [resolve(n, ns) for n in names]


def node_id(published: PublishedId, ns: Mapping[str, int]) -> ua.NodeId:
    return make_node_id(published.number, ns[published.uri])


def make_node_id(identifier: int | str, namespace_index: int) -> ua.NodeId:
    """A numeric or string NodeId (asyncua's constructor is typed with its own int and
    str subclasses)."""
    ident: ua.Int32 | ua.String = ua.Int32(identifier) if isinstance(identifier, int) else ua.String(identifier)
    return ua.NodeId(ident, ua.Int16(namespace_index))


# -- published NodeIds ----------------------------------------------------------------------
MACHINES_FOLDER: Final = PublishedId(MACHINERY_URI, 1001)  # Machinery 40001-1: the Machines folder
MACHINERY_ITEM_STATE_TYPE: Final = PublishedId(MACHINERY_URI, 1002)
MACHINERY_OPERATION_MODE_TYPE: Final = PublishedId(MACHINERY_URI, 1008)
MACHINE_TOOL_TYPE: Final = PublishedId(MACHINE_TOOL_URI, 13)
MT_ALERT_TYPE: Final = PublishedId(MACHINE_TOOL_URI, 39)  # AlertType: ErrorCode, AlarmConditionType
MT_NOTIFICATION_EVENT_TYPE: Final = PublishedId(MACHINE_TOOL_URI, 35)  # NotificationEventType: Identifier
JOBS_OUTPUT_INFO_TYPE: Final = PublishedId(JOBS_URI, 3009)  # the OptionSet derived from Byte (docs/opcua.md)
# ISA-95 Job Control v2 structures (OPC 10031-4)
ISA95_PARAMETER: Final = PublishedId(ISA95_JC_URI, 3003)
ISA95_STATE: Final = PublishedId(ISA95_JC_URI, 3006)
ISA95_WORK_MASTER: Final = PublishedId(ISA95_JC_URI, 3007)
ISA95_JOB_ORDER: Final = PublishedId(ISA95_JC_URI, 3008)
ISA95_MATERIAL: Final = PublishedId(ISA95_JC_URI, 3010)
ISA95_JOB_RESPONSE: Final = PublishedId(ISA95_JC_URI, 3013)
ISA95_JOB_ORDER_AND_STATE: Final = PublishedId(ISA95_JC_URI, 3015)
# OPC 40540 1.0.0 (published on reference.opcfoundation.org; FeedstockListType and
# FeedstockFunction have no published NodeId there: match those by browse name).
AM_FEEDSTOCK_TYPE: Final = PublishedId(AM_URI, 1000)
AM_PROCESS_VALUE_TYPE: Final = PublishedId(AM_URI, 1002)  # not served by printfleet yet
AM_EQUIPMENT_TYPE: Final = PublishedId(AM_URI, 1003)
AM_MACHINE_IDENTIFICATION_TYPE: Final = PublishedId(AM_URI, 1004)
ADDITIVE_MANUFACTURING_TYPE: Final = PublishedId(AM_URI, 1005)
AM_RUN_INFO_DATA_TYPE: Final = PublishedId(AM_URI, 3001)
AM_SENSOR_SEVERITY: Final = PublishedId(AM_URI, 3002)
AM_SENSOR_CATEGORY: Final = PublishedId(AM_URI, 3003)

# -- browse names, relative to an AdditiveManufacturingType instance ------------------------
IDENTIFICATION: Final = (Name(DI_URI, "Identification"),)
MANUFACTURER: Final = Name(DI_URI, "Manufacturer")
MODEL: Final = Name(DI_URI, "Model")
PRODUCT_CODE: Final = Name(DI_URI, "ProductCode")
SERIAL_NUMBER: Final = Name(DI_URI, "SerialNumber")
SOFTWARE_REVISION: Final = Name(DI_URI, "SoftwareRevision")
PRODUCT_INSTANCE_URI: Final = Name(DI_URI, "ProductInstanceUri")
COMPONENT_NAME: Final = Name(DI_URI, "ComponentName")
AM_TECHNOLOGY_IDENTIFIER: Final = Name(AM_URI, "AMTechnologyIdentifier")

MONITORING_MACHINE_TOOL: Final = (Name(MACHINE_TOOL_URI, "Monitoring"), Name(MACHINE_TOOL_URI, "MachineTool"))
MACHINERY_ITEM_STATE: Final = MONITORING_MACHINE_TOOL + (Name(MACHINERY_URI, "MachineryItemState"),)
MACHINERY_OPERATION_MODE: Final = MONITORING_MACHINE_TOOL + (Name(MACHINERY_URI, "MachineryOperationMode"),)
CURRENT_STATE: Final = Name(UA_URI, "CurrentState")
STATE_ID: Final = Name(UA_URI, "Id")
OPERATION_COUNTERS: Final = MONITORING_MACHINE_TOOL + (Name(DI_URI, "OperationCounters"),)
POWER_ON_DURATION: Final = Name(DI_URI, "PowerOnDuration")
OPERATION_DURATION: Final = Name(DI_URI, "OperationDuration")
OPERATION_CYCLE_COUNTER: Final = Name(DI_URI, "OperationCycleCounter")
IS_WARM_UP: Final = Name(MACHINE_TOOL_URI, "IsWarmUp")
MT_OPERATION_MODE: Final = Name(MACHINE_TOOL_URI, "OperationMode")  # MachineOperationMode enumeration

FEEDSTOCK_LIST: Final = (Name(MACHINE_TOOL_URI, "Equipment"), Name(AM_URI, "Feedstock"))
FEEDSTOCK_IDENTIFIER: Final = Name(AM_URI, "Identifier")
FEEDSTOCK_NAME: Final = Name(AM_URI, "Name")
FEEDSTOCK_FUNCTION: Final = Name(AM_URI, "Function")
FEEDSTOCK_REMAINING_QUANTITY: Final = Name(AM_URI, "RemainingQuantity")
FEEDSTOCK_READY: Final = Name(AM_URI, "ReadyForProduction")

# Exists (MachineToolType); the simulator raises its events on the machine object itself.
NOTIFICATION_MESSAGES: Final = (Name(MACHINE_TOOL_URI, "Notification"), Name(MACHINE_TOOL_URI, "Messages"))

JOB_MANAGEMENT: Final = (Name(MACHINERY_URI, "MachineryBuildingBlocks"), Name(JOBS_URI, "JobManagement"))
JOB_ORDER_CONTROL: Final = JOB_MANAGEMENT + (Name(JOBS_URI, "JobOrderControl"),)
JOB_ORDER_RESULTS: Final = JOB_MANAGEMENT + (Name(JOBS_URI, "JobOrderResults"),)
PERSONNEL_ID: Final = Name(ISA95_JC_URI, "PersonnelID")  # in JobOrderControl; private (a user name)
WORK_MASTER: Final = Name(ISA95_JC_URI, "WorkMaster")  # in JobOrderControl; private (file names)
JOB_ORDER_LIST: Final = JOB_ORDER_CONTROL + (Name(ISA95_JC_URI, "JobOrderList"),)
JOB_ORDER_RESPONSE_LIST: Final = JOB_ORDER_RESULTS + (Name(ISA95_JC_URI, "JobOrderResponseList"),)
ACTIVE_PROGRAM_NAME: Final = (
    Name(MACHINE_TOOL_URI, "Production"),
    Name(MACHINE_TOOL_URI, "ActiveProgram"),
    Name(MACHINE_TOOL_URI, "Name"),
)  # private: the running job's file name

# FileDirectoryType folders; private: the simulator keeps the job file there as a FileType
# object named after the file.
WORK_MASTER_FILES: Final = (Name(UA_URI, "FileSystem"), Name(MACHINE_TOOL_URI, "WorkMasters"))

# -- names of values inside ISA-95 structures -------------------------------------------------
# ISA95ParameterDataType.ID values: 40001-3 §7.2 and OPC 40540 §9.
PARAM_JOB_NAME: Final = "JobName"  # private (a job name): never copied by the collector
PARAM_LAYERS_PLANNED: Final = "LayersPlanned"
PARAM_RUNS: Final = "Runs"
# ISA95MaterialDataType.MaterialUse of the material a job put into its parts.
MATERIAL_USE_CONSUMED: Final = "Consumed"
# The simulator's event types (in SIMULATOR_URI) carry the printer API's event sequence
# number in this field, so a client can deduplicate across subscription and history.
ALERT_EVENT_TYPE_NAME: Final = "PrintfleetAlertType"  # subtype of MachineTool AlertType
NOTIFICATION_EVENT_TYPE_NAME: Final = "PrintfleetNotificationEventType"  # of NotificationEventType
EVENT_SEQUENCE_FIELD: Final = "PrintfleetSequence"
ERROR_CODE: Final = Name(MACHINE_TOOL_URI, "ErrorCode")  # AlertType
NOTIFICATION_IDENTIFIER: Final = Name(MACHINE_TOOL_URI, "Identifier")  # NotificationEventType
