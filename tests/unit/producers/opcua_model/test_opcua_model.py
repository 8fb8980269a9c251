"""The shared OPC UA model (producers/opcua_model/): names resolved by URI, the vendored
NodeSet files and their order, and the certificate helper. No servers."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from asyncua import ua
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from producers.opcua_model import NODESETS, Role, ensure_certificate, names, subject_of


def test_names_resolve_by_namespace_uri_not_by_index() -> None:
    a = {names.UA_URI: 0, names.DI_URI: 2, names.MACHINE_TOOL_URI: 7}
    b = {names.UA_URI: 0, names.DI_URI: 5, names.MACHINE_TOOL_URI: 3}
    assert names.path(a, names.IDENTIFICATION) == [ua.QualifiedName("Identification", 2)]
    assert names.path(b, names.IDENTIFICATION) == [ua.QualifiedName("Identification", 5)]
    assert names.node_id(names.MACHINE_TOOL_TYPE, b) == names.make_node_id(13, 3)
    with pytest.raises(KeyError, match="AdditiveManufacturing"):
        names.node_id(names.ADDITIVE_MANUFACTURING_TYPE, a)


def _model(path: Path) -> tuple[str, set[str]]:
    text = path.read_text(encoding="utf-8")
    model = re.search(r'<Model ModelUri="([^"]+)"', text)
    assert model is not None, path
    required = set(re.findall(r'<RequiredModel ModelUri="([^"]+)"', text))
    return model.group(1), required


def test_nodesets_are_listed_in_dependency_order_and_each_file_is_the_model_it_claims() -> None:
    loaded = {names.UA_URI}
    for nodeset in NODESETS:
        uri, required = _model(nodeset.path)
        assert uri == nodeset.model_uri
        assert required <= loaded, f"{nodeset.file_name} needs {required - loaded} first"
        loaded.add(uri)
    assert loaded >= {names.DI_URI, names.IA_URI, names.MACHINERY_URI, names.ISA95_JC_URI, names.JOBS_URI,
                      names.MACHINE_TOOL_URI, names.AM_URI}


def test_vendored_files_keep_their_licence_header_and_the_subset_says_what_it_is() -> None:
    for nodeset in NODESETS[:-1]:
        head = nodeset.path.read_text(encoding="utf-8")[:2000]
        assert "OPC Foundation MIT License 1.00" in head, nodeset.file_name
    subset = NODESETS[-1].path.read_text(encoding="utf-8")[:3000]
    assert "NOT the official NodeSet file" in subset
    notice = (NODESETS[0].path.parent / "NOTICE.md").read_text(encoding="utf-8")
    for nodeset in NODESETS:
        assert nodeset.file_name in notice
    assert "sha512-7qDwdkYRKIGRBk0gKhY5C3olQ0wRHTCoZj4FbzD1GmXF5xGaZcv" in notice


def test_the_subset_has_the_published_node_ids_of_opc_40540() -> None:
    text = NODESETS[-1].path.read_text(encoding="utf-8")
    for published, browse in (
        (names.ADDITIVE_MANUFACTURING_TYPE, "AdditiveManufacturingType"),
        (names.AM_MACHINE_IDENTIFICATION_TYPE, "MachineIdentificationAMType"),
        (names.AM_EQUIPMENT_TYPE, "EquipmentAMType"),
        (names.AM_FEEDSTOCK_TYPE, "FeedstockType"),
        (names.AM_RUN_INFO_DATA_TYPE, "RunInfoDataType"),
    ):
        assert f'NodeId="ns=1;i={published.number}" BrowseName="1:{browse}"' in text


def test_a_certificate_is_made_once_per_folder_with_the_application_uri(tmp_path: Path) -> None:
    first = asyncio.run(ensure_certificate(tmp_path, "server", "urn:test:server", role=Role.SERVER))
    again = asyncio.run(ensure_certificate(tmp_path, "server", "urn:test:server", role=Role.SERVER))
    assert first.der() == again.der() and first.thumbprint() == again.thumbprint()
    cert = x509.load_der_x509_certificate(first.der())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:test:server" in san.get_values_for_type(x509.UniformResourceIdentifier)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert "printfleet server" in subject_of(first.cert_file)
    assert first.key_file.stat().st_mode & 0o077 == 0
    client = asyncio.run(ensure_certificate(tmp_path, "collector", "urn:test:collector", role=Role.CLIENT))
    client_usage = x509.load_der_x509_certificate(client.der()).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(client_usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
