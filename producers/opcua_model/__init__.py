"""The OPC UA model printfleet serves and reads: OPC 40540 "OPC UA for Additive
Manufacturing" on OPC UA for Machinery, shared by the simulator's OPC UA server
(producers/simulator/opcua_server.py) and the collector's OPC UA driver. No simulator or
collector logic lives here.

    from producers.opcua_model import load_nodesets, names, ensure_certificate, Role
    await server.init(); classes = await load_nodesets(server)
    ns = await names.namespace_indices(client)
    machines = client.get_node(names.node_id(names.MACHINES_FOLDER, ns))

Modules: names (URIs, browse names, published NodeIds; resolved by URI at run time),
nodesets (the vendored NodeSet files and their loader), pki (keys and certificates),
errors. The files under nodesets/ and their origin: nodesets/NOTICE.md. The contract,
node by node: docs/opcua.md.
"""

from producers.opcua_model import names
from producers.opcua_model.errors import NodesetLoadError, OpcUaModelError, PkiError
from producers.opcua_model.nodesets import NODESETS, NodesetFile, load_nodesets
from producers.opcua_model.pki import CertificatePair, Role, ensure_certificate, subject_of

__all__ = [
    "NODESETS",
    "CertificatePair",
    "NodesetFile",
    "NodesetLoadError",
    "OpcUaModelError",
    "PkiError",
    "Role",
    "ensure_certificate",
    "load_nodesets",
    "names",
    "subject_of",
]
