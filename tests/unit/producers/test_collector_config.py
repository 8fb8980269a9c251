from __future__ import annotations

from pathlib import Path

import pytest

from producers.collector.config import Cadence, CollectorSettings, render


def test_render_then_load_gives_the_same_settings(tmp_path: Path) -> None:
    settings = CollectorSettings(
        site_id="s1", site_secret='se"cret', state_dir=tmp_path / "state", gateway_url="https://gw:1",
        gateway_token="tok", printer_urls=("https://p/printers/p001/",), printer_ca_file=tmp_path / "ca.pem",
        gateway_ca_file=tmp_path / "gw.pem", status_port=0, cadence=Cadence(heartbeat_s=3.0),
    )
    path = tmp_path / "site.toml"
    path.write_text(render(settings))
    assert CollectorSettings.load(path) == settings
    assert CollectorSettings.load(path, status_port=8085).status_port == 8085


def test_typo_and_missing_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('site_id = "a"\nsite_secret = "b"\nstate_dir = "s"\nstatus_prot = 1\n[gateway]\nurl = "u"\ntoken = "t"\n[printers]\nurls = []\n')
    with pytest.raises(ValueError, match="status_prot"):
        CollectorSettings.load(path)
    path.write_text('site_id = "a"\n')
    with pytest.raises(ValueError, match="missing"):
        CollectorSettings.load(path)
