"""The JSON Schema (draft-07) of one entry of the release catalogue topic
(`catalogue.releases`): the JSON the maker's release tooling writes and the stream
worker parses into `streams.advisories.Release`.

Called by `schemas.asyncapi` for the topic's payload. It lives here, not in streams/,
because schemas/ describes every public payload and must not import the stream worker;
a unit test (tests/unit/schemas/test_release_schema.py) holds it to the dataclass's
fields, so the two cannot drift. The enums are the update advisory schema's (the record
an entry becomes), read from the registry so a new symbol needs no edit here.
"""

from __future__ import annotations

from typing import Any, Final

from schemas.registry import SchemaRegistry

# What the signature covers, in words (streams.advisories.Release.canonical_bytes).
SIGNED_BYTES: Final = (
    "the UTF-8 bytes of 'printfleet release catalogue v1\\n' followed by the JSON of every field "
    "but signature, keys sorted, no spaces (separators ',' and ':'), non-ASCII characters unescaped"
)


def release_schema(registry: SchemaRegistry) -> dict[str, Any]:
    """The JSON Schema of a catalogue entry. Keys outside `properties` are refused by the
    worker (the entry is logged and ignored), hence additionalProperties false."""
    advisory_types = [s for s in registry.enum_symbols("update_advisory", "AdvisoryType") if s != "UNKNOWN"]
    severities = list(registry.enum_symbols("update_advisory", "Severity"))
    optional_text = {"type": ["string", "null"], "default": None}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Release",
        "description": (
            "One release the maker publishes: a firmware version for a printer model, or a print-parameter "
            "set for a model and material. Only an entry whose signature verifies against the worker's "
            "--release-key-file is ever advised; others are logged and counted, never advised."),
        "type": "object",
        "additionalProperties": False,
        "required": ["model_number", "advisory_type", "version", "released_at", "summary"],
        "properties": {
            "model_number": {"type": "string", "description": "Printer model the release is for, e.g. M0P44A."},
            "advisory_type": {"type": "string", "enum": advisory_types, "description": "What is released."},
            "version": {
                "type": "string", "pattern": r"^\s*\d+(\.\d+)*(-[0-9A-Za-z.]+)?\s*$",
                "description": "Dotted numbers, optionally a '-suffix' (a pre-release, older than the release "
                               "itself); 5.10.0 is newer than 5.9.3, 5.3 equals 5.3.0.",
            },
            "released_at": {"type": "integer", "description": "When it was released, ms since the Unix epoch (UTC)."},
            "summary": {"type": "string", "description": "What it changes, in one line."},
            "severity": {"type": "string", "enum": severities, "default": "INFO",
                         "description": "How urgent installing it is."},
            "material_type": {**optional_text, "description": "Material of a print-parameter set; null for firmware."},
            "release_notes_url": {**optional_text, "description": "Where the release notes are."},
            "package_sha256": {**optional_text, "description": "SHA-256 of the package, hex."},
            "signature": {
                "type": "string", "default": "",
                "description": f"Base64 of the maker's 64-byte Ed25519 signature over {SIGNED_BYTES}.",
            },
        },
    }
