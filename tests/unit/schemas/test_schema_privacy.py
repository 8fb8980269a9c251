"""Nothing the catalogue says is never collected has a field; the check itself can fail."""

from __future__ import annotations

import re
from typing import Any

import pytest

from schemas.kinds import KINDS
from schemas.loader import SchemaVersion
from schemas.privacy import FORBIDDEN_TERMS, forbidden_concepts, is_forbidden_key, scan_schema
from schemas.registry import SchemaRegistry
from schemas.samples import sample_record

REGISTRY = SchemaRegistry.load_default()

BAD_SCHEMA: dict[str, Any] = {
    "type": "record", "name": "Leaky", "namespace": "io.test", "doc": "A schema that collects too much.",
    "fields": [
        {"name": "job_name", "type": "string", "doc": "x"},
        {"name": "partName", "type": "string", "doc": "x"},
        {"name": "submitted", "type": "string", "doc": "The user who submitted the job."},
        {"name": "workstation", "type": "string", "doc": "x"},
        {"name": "source_host", "type": "string", "doc": "Where the job came from."},
        {"name": "parts", "type": {"type": "array", "items": {
            "type": "record", "name": "P", "doc": "x", "fields": [
                {"name": "mesh_url", "type": "string", "doc": "Where the STL lives."},
                {"name": "path", "type": "string", "doc": "The file name of the build file."}]}}, "doc": "x"},
        {"name": "blob", "type": "bytes", "doc": "The job contents, for replay."},
        {"name": "kind", "type": {"type": "enum", "name": "K", "doc": "x", "symbols": ["GEOMETRY"]}, "doc": "x"},
    ],
}


@pytest.mark.parametrize("schema", REGISTRY.all_versions(), ids=lambda s: f"{s.kind}-v{s.version}")
def test_no_kept_schema_names_forbidden_data(schema: SchemaVersion) -> None:
    assert [str(f) for f in scan_schema(dict(schema.raw))] == []


def test_the_scan_finds_every_concept_in_a_bad_schema() -> None:
    findings = scan_schema(BAD_SCHEMA)
    assert {f.concept for f in findings} == set(FORBIDDEN_TERMS)
    paths = {f.path for f in findings}
    assert {"Leaky.job_name", "Leaky.partName", "Leaky.submitted (doc)", "Leaky.workstation",
            "Leaky.source_host", "Leaky.parts[]:P.mesh_url", "Leaky.parts[]:P.path (doc)",
            "Leaky.blob (doc)", "Leaky.kind:K.GEOMETRY"} <= paths


def test_a_pseudonym_may_say_what_it_replaces_but_nothing_else() -> None:
    ok = {"type": "record", "name": "R", "doc": "x", "fields": [
        {"name": "source_host_pseudonym", "type": "string", "doc": "Keyed pseudonym of the host name."}]}
    assert scan_schema(ok) == []
    leaky = {"type": "record", "name": "R", "doc": "x", "fields": [
        {"name": "host_pseudonym", "type": "string", "doc": "Pseudonym of the host; also the job name."}]}
    assert [f.concept for f in scan_schema(leaky)] == ["job name"]


@pytest.mark.parametrize(("key", "forbidden"), [
    ("jobName", True), ("JOB_NAME", True), ("job-name", True), ("jobname", True), ("partNames", True),
    ("userName", True), ("username", True), ("owner", True), ("computerName", True), ("hostname", True),
    ("sourceHost", True), ("partGeometry", True), ("meshData", True), ("stlFile", True), ("fileName", True),
    ("filePath", True), ("jobContents", True), ("printFile", True),
    ("jobId", False), ("partId", False), ("printerName", False), ("modelNumber", False), ("status", False),
    ("boundingBox", False), ("volumeCm3", False), ("sourceHostPseudonym", False), ("serialNumber", False),
    ("firmwareRelease", False), ("materialType", False), ("layerCount", False),
])
def test_collector_key_filter(key: str, forbidden: bool) -> None:
    assert is_forbidden_key(key) is forbidden


def test_prose_is_matched_by_words_not_substrings() -> None:
    assert forbidden_concepts("the name of the job") == ["job name"]
    assert forbidden_concepts("hosted") == [] and forbidden_concepts("users") == ["user name"]
    assert forbidden_concepts("Part numbers and usage") == []


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize("kind", KINDS)
def test_samples_hold_no_forbidden_keys(kind: str) -> None:
    assert [k for k in _keys(sample_record(kind)) if is_forbidden_key(k)] == []


def test_hook_pattern_would_catch_a_forbidden_field() -> None:
    # The pre-stop hook greps the files; prove its pattern matches what the scan refuses.
    pattern = re.compile(r'"name"\s*:\s*"(job_?name|part_?name|user_?name|username|computer_?name|geometry|file_?name)"',
                         re.I)
    assert pattern.search('{"name": "job_name", "type": "string"}')
    assert is_forbidden_key("job_name")
