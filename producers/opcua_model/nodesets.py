"""The vendored NodeSet files and the one function that loads them into an asyncua Server.

Called by the simulator's OPC UA server at start (producers/simulator/opcua_server.py),
before it instantiates machines. A client (the collector's driver) loads nothing: it
browses the server. Load order follows each file's RequiredModel list (docs/opcua.md):

    DI -> IA -> Machinery -> ISA-95 Job Control v2 -> Machinery/Jobs -> MachineTool
       -> printfleet's OPC 40540 subset

The dependency files are copies from npm `node-opcua-nodesets@2.185.0` (nodesets/NOTICE.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.uaerrors import UaError

from producers.opcua_model import names
from producers.opcua_model.errors import NodesetLoadError

log = logging.getLogger(__name__)

NODESET_DIR: Final = Path(__file__).resolve().parent / "nodesets"


@dataclass(frozen=True, slots=True)
class NodesetFile:
    """One NodeSet file, its model URI, and whether it loads in asyncua's strict mode."""

    file_name: str
    model_uri: str
    strict: bool = True

    @property
    def path(self) -> Path:
        return NODESET_DIR / self.file_name


NODESETS: Final = (
    # DI 1.05.0 references ns0 nodes newer than asyncua 2.1.0's built-in address space:
    # strict mode refuses it, non-strict skips those few nodes (none printfleet uses).
    NodesetFile("Opc.Ua.Di.NodeSet2.xml", names.DI_URI, strict=False),
    NodesetFile("Opc.Ua.IA.NodeSet2.xml", names.IA_URI),
    NodesetFile("Opc.Ua.Machinery.NodeSet2.xml", names.MACHINERY_URI),
    NodesetFile("opc.ua.isa95-jobcontrol.nodeset2.xml", names.ISA95_JC_URI),
    NodesetFile("Opc.Ua.Machinery.Jobs.Nodeset2.xml", names.JOBS_URI),
    NodesetFile("Opc.Ua.MachineTool.NodeSet2.xml", names.MACHINE_TOOL_URI),
    NodesetFile("Printfleet.AdditiveManufacturing.Subset.NodeSet2.xml", names.AM_URI),
)


async def load_nodesets(server: Server) -> dict[str, type]:
    """Import every file of NODESETS into `server` (after `server.init()`, before start),
    then generate the Python classes of their structures and enumerations.

    Returns the generated classes by name (e.g. "ISA95JobOrderDataType", "RunInfoDataType"),
    which the server needs to write structured values. Raises NodesetLoadError naming the
    file that failed.
    """
    for nodeset in NODESETS:
        if nodeset.model_uri == names.JOBS_URI:
            await _declare_jobs_option_set(server)
        try:
            await server.import_xml(str(nodeset.path), strict_mode=nodeset.strict)
        except (ValueError, RuntimeError, UaError, OSError) as exc:
            raise NodesetLoadError(f"cannot load {nodeset.file_name}: {exc}") from exc
    try:
        return await server.load_data_type_definitions()
    except (ValueError, RuntimeError, UaError) as exc:
        raise NodesetLoadError(f"cannot build the data types of the nodesets: {exc}") from exc


async def _declare_jobs_option_set(server: Server) -> None:
    # Machinery/Jobs' OutputInfoType (i=3009) is an OptionSet derived from Byte. asyncua
    # 2.1.0's importer only knows option sets under OptionSetType and then cannot build
    # OutputInformationDataType ("Unknown datatype for field ... OutputInfo"). Telling its
    # public base-type table that the type is a Byte lets the structure resolve. The table
    # is asyncua's own process-wide registry: the entry is the same for every server.
    index = await server.register_namespace(names.JOBS_URI)
    ua.basetype_by_datatype[names.node_id(names.JOBS_OUTPUT_INFO_TYPE, {names.JOBS_URI: index})] = "Byte"
