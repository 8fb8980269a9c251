"""Errors of the shared OPC UA model (producers/opcua_model/).

    PrintfleetError                    common/errors.py
    └── ProducerError                  producers/errors.py
        └── OpcUaModelError            root of the model's errors
            ├── NodesetLoadError       a vendored NodeSet file did not load into the server
            │                          (a bad file, or an asyncua that behaves differently)
            └── PkiError               a key or certificate could not be made or read

Neither is retriable: both need a fix of files or versions, not a later try.
"""

from __future__ import annotations

from producers.errors import ProducerError


class OpcUaModelError(ProducerError):
    """Root of the OPC UA model's errors."""

    retriable: bool = False


class NodesetLoadError(OpcUaModelError):
    """`load_nodesets` could not import a NodeSet file; names the file and the cause."""

    retriable = False


class PkiError(OpcUaModelError):
    """A key or certificate file could not be written or read; names the file."""

    retriable = False
