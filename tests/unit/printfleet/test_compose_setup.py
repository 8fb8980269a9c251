"""printfleet/compose_setup.py, which the compose file's `setup` service runs: what it
writes is what the collector, the gateway and the simulator read (no Docker here, so it
runs against folders)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509

from producers.collector.config import CollectorSettings
from producers.gateway.sites import SiteDirectory
from common.tls import ensure_site_ca
from producers.simulator.fleet import Fleet
from producers.simulator.settings import SimulatorSettings
from printfleet import compose_setup


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("PRINTFLEET_SIM_PRINTERS", "3")
    monkeypatch.setenv("PRINTFLEET_SIM_SEED", "7")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "site_token").write_text("the-token\n")
    (secrets / "site_secret").write_text("the-secret\n")
    return {name: tmp_path / name for name in ("secrets", "cloud", "site", "site-ca")}


def run(dirs: dict[str, Path]) -> None:
    code = compose_setup.main([
        f"--secrets={dirs['secrets']}", f"--cloud={dirs['cloud']}", f"--site={dirs['site']}",
        f"--site-ca={dirs['site-ca']}", "--owner=-1",
    ])
    assert code == 0


def test_the_gateway_enrols_the_simulated_printers_under_the_sites_token(dirs: dict[str, Path]) -> None:
    run(dirs)
    site = SiteDirectory.load(dirs["cloud"] / "sites.toml").authenticate("the-token")
    expected = {p["printer_uuid"] for p in Fleet(SimulatorSettings(printers=3, seed=7)).truth()["printers"]}
    assert site is not None and site.site_id == "compose-site"
    assert site.devices == expected and len(expected) == 3


def test_the_collector_reads_its_site_toml_and_trusts_both_cas(dirs: dict[str, Path]) -> None:
    run(dirs)
    settings = CollectorSettings.load(dirs["site"] / "site.toml")
    assert settings.gateway_token == "the-token" and settings.site_secret == "the-secret"
    assert settings.gateway_url == "https://gateway:18444"
    assert settings.state_dir == Path("/var/lib/printfleet/collector")
    assert settings.printer_urls[0] == "https://simulator:18443/printers/p001/" and len(settings.printer_urls) == 3
    assert settings.gateway_ca_file is not None and settings.printer_ca_file is not None
    assert settings.gateway_ca_file.read_bytes() == (dirs["cloud"] / "ca.pem").read_bytes()
    # The simulator reuses the site CA setup made, so the copy stays the CA it serves with.
    assert settings.printer_ca_file.read_bytes() == ensure_site_ca(dirs["site-ca"], "x").cert_file.read_bytes()
    assert (dirs["site"] / "site.toml").stat().st_mode & 0o077 == 0


def test_the_gateway_certificate_names_the_gateway_and_chains_to_the_cloud_ca(dirs: dict[str, Path]) -> None:
    run(dirs)
    cert = x509.load_pem_x509_certificate((dirs["cloud"] / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"gateway", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    context = ssl.create_default_context(cafile=str(dirs["cloud"] / "ca.pem"))
    context.load_cert_chain(dirs["cloud"] / "server.pem", dirs["cloud"] / "server-key.pem")


def test_a_second_run_keeps_both_cas(dirs: dict[str, Path]) -> None:
    run(dirs)
    before = [(dirs[d] / "ca.pem").read_bytes() for d in ("cloud", "site-ca")]
    run(dirs)
    assert [(dirs[d] / "ca.pem").read_bytes() for d in ("cloud", "site-ca")] == before


def test_a_missing_secret_stops_it_with_its_name(dirs: dict[str, Path]) -> None:
    (dirs["secrets"] / "site_secret").unlink()
    with pytest.raises(SystemExit, match="site_secret"):
        run(dirs)
