from __future__ import annotations

from pathlib import Path

import pytest

from producers.collector.config import Cadence, CollectorSettings, render
from producers.errors import CollectorConfigError, ProducerError


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


SITE = """\
site_id = "a"
site_secret = "s3cret"
state_dir = "state"
[gateway]
url = "https://gw.example.com/"
token = "tok3n"
[printers]
urls = ["https://10.0.0.21/printers/p001"]
"""


def _load_error(tmp_path: Path, text: str) -> CollectorConfigError:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(CollectorConfigError) as error:
        CollectorSettings.load(path)
    message = str(error.value)
    assert message.startswith(f"config file {path}: ") and "\n" not in message
    assert error.value.path == path
    return error.value


def test_a_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + "[cadence]\nheartbeat_s = 3\nevents_s = 2.5\n")
    settings = CollectorSettings.load(path)
    assert settings.state_dir == (tmp_path / "state").resolve()
    assert settings.gateway_url == "https://gw.example.com"
    assert settings.printer_urls == ("https://10.0.0.21/printers/p001/",)
    assert settings.cadence == Cadence(heartbeat_s=3.0, events_s=2.5)
    assert isinstance(settings.cadence.heartbeat_s, float)
    assert settings.status_port == 8080 and settings.gateway_ca_file is None


def test_integers_are_numbers_and_numbers_are_floats(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("status_every_s = 5\nrequest_timeout_s = 2.5\n" + SITE)
    settings = CollectorSettings.load(path)
    assert settings.status_every_s == 5.0 and isinstance(settings.status_every_s, float)
    assert settings.request_timeout_s == 2.5


def test_the_error_is_a_value_error_and_a_producer_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, SITE + "[cadence]\nheartbeat_s = \"10\"\n")
    assert isinstance(error, ValueError) and isinstance(error, ProducerError)
    assert error.retriable is False


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (SITE + "[cadence]\nheartbeat_s = \"10\"\n", "[cadence] heartbeat_s",
         '[cadence] heartbeat_s must be a number, got a string ("10")'),
        (SITE + "[cadence]\nheartbeat_s = true\n", "[cadence] heartbeat_s",
         "[cadence] heartbeat_s must be a number, got a boolean (true)"),
        ("status_port = 80.5\n" + SITE, "status_port", "status_port must be an integer, got a float (80.5)"),
        ("spool_max_bytes = \"1G\"\n" + SITE, "spool_max_bytes", 'spool_max_bytes must be an integer, got a string ("1G")'),
        ("state_dir = 1\n" + SITE.replace('state_dir = "state"\n', ""), "state_dir",
         "state_dir must be a path (string), got an integer (1)"),
        (SITE.replace('url = "https://gw.example.com/"', "url = 2026-01-01"), "[gateway] url",
         '[gateway] url must be a string, got a date/time ("2026-01-01")'),
        (SITE.replace('["https://10.0.0.21/printers/p001"]', '["https://p/", 7]'), "[printers] urls",
         '[printers] urls must be an array of strings, got an array (["https://p/", 7])'),
        (SITE + "[cadence]\nheartbeat = 10\n", "[cadence] heartbeat",
         "unknown key [cadence] heartbeat (did you mean heartbeat_s?); known keys in [cadence]: "
         "heartbeat_s, events_s, jobs_s, logs_s, counters_s, consumables_s, identity_s"),
        (SITE.replace('token = "tok3n"', 'token = "tok3n"\ncafile = "x.pem"'), "[gateway] cafile",
         "unknown key [gateway] cafile (did you mean ca_file?); known keys in [gateway]: url, token, ca_file"),
        ("statusport = 1\n" + SITE, "statusport",
         "unknown key statusport (did you mean status_port?); known top-level keys: site_id, site_secret, "
         "state_dir, spool_max_bytes, status_host, status_port, status_every_s, request_timeout_s, upload_max_records, "
         "kept_max_records, kept_max_bytes, resend_kept_s, [gateway], [printers], [cadence]"),
        # Fields of the settings object that are not top-level keys of the file.
        ('gateway_url = "https://x"\n' + SITE, "gateway_url", "unknown key gateway_url"),
        ("cadence = 10\n" + SITE, "cadence", "[cadence] must be a table, got an integer"),
        (SITE + "[cadence.heartbeat_s]\n", "[cadence] heartbeat_s", "must be a number, got a table ({})"),
        (SITE.replace('site_id = "a"\n', ""), "site_id", "missing key site_id (a string)"),
        (SITE.split("[printers]")[0], "[printers] urls", "missing key [printers] urls (an array of strings)"),
        ('site_id = "a"\nsite_secret = "b"\nstate_dir = "s"\n', "[gateway] url", "missing key [gateway] url (a string)"),
    ],
)
def test_mistakes_name_the_key_and_what_was_expected(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = _load_error(tmp_path, text)
    assert error.key == key
    assert problem in str(error)


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    error = _load_error(tmp_path, SITE.replace('token = "tok3n"', "token = [\"tok3n\"]"))
    assert str(error).endswith("[gateway] token must be a string, got an array")
    error = _load_error(tmp_path, SITE.replace('site_secret = "s3cret"', "site_secret = 12345"))
    assert "12345" not in str(error)


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CollectorConfigError, match=r"nope\.toml: cannot read it: No such file or directory$"):
        CollectorSettings.load(missing)
    with pytest.raises(CollectorConfigError, match="cannot read it"):
        CollectorSettings.load(tmp_path)
    error = _load_error(tmp_path, 'site_id = "a\n')
    assert error.key is None and "not valid TOML" in str(error) and "line 1" in str(error)
    (tmp_path / "site.toml").write_bytes(b"site_id = '\xff'\n")
    with pytest.raises(CollectorConfigError, match="not valid TOML: not UTF-8 text"):
        CollectorSettings.load(tmp_path / "site.toml")
