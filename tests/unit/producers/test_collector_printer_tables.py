"""A driver per printer in site.toml: `[[printer]]` tables beside the `[printers] urls` of
before, which load as they always did; the OPC UA driver's settings are read and checked
in full, and the collector refuses to start with one, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from printfleet.cli import main
from producers.collector.collector import Collector
from producers.collector.config import CollectorSettings, render
from producers.collector.printer_tables import OpcUaPrinter, PrinterApiPrinter
from producers.errors import CollectorConfigError

HEAD = """\
site_id = "a"
site_secret = "s3cret"
state_dir = "state"
[gateway]
url = "https://gw.example.com/"
token = "tok3n"
"""
LEGACY = HEAD + """\
[printers]
ca_file = "site-ca.pem"
urls = ["https://10.0.0.21/printers/p001", "https://10.0.0.21/printers/p002/"]
"""
API_TABLE = """
[[printer]]
driver = "printer-api"
url = "https://10.0.0.22"
"""
OPCUA_TABLE = """
[[printer]]
driver = "opcua"
url = "opc.tcp://10.0.0.30:4840"
server_certificate = "certs/machine.der"
user = "printfleet"
password_file = "opcua-password"
machines = ["AM-1", "AM-2"]
"""


def _load(tmp_path: Path, text: str) -> CollectorSettings:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return CollectorSettings.load(path, env={})


def test_the_printers_table_of_before_loads_as_before(tmp_path: Path) -> None:
    settings = _load(tmp_path, LEGACY)
    ca = (tmp_path / "site-ca.pem").resolve()
    assert settings.printer_urls == ("https://10.0.0.21/printers/p001/", "https://10.0.0.21/printers/p002/")
    assert settings.printer_ca_file == ca and settings.printers == ()
    assert settings.all_printers() == (PrinterApiPrinter("https://10.0.0.21/printers/p001/", ca),
                                       PrinterApiPrinter("https://10.0.0.21/printers/p002/", ca))


def test_printer_tables_alone(tmp_path: Path) -> None:
    settings = _load(tmp_path, HEAD + API_TABLE + OPCUA_TABLE)
    assert settings.printer_urls == () and settings.printer_ca_file is None
    assert settings.all_printers() == (
        PrinterApiPrinter("https://10.0.0.22/", None),
        OpcUaPrinter(url="opc.tcp://10.0.0.30:4840", server_certificate=(tmp_path / "certs/machine.der").resolve(),
                     user="printfleet", password_file=(tmp_path / "opcua-password").resolve(),
                     machines=("AM-1", "AM-2")),
    )


def test_mixed_the_tables_come_after_the_urls_and_take_the_site_ca_unless_they_name_one(tmp_path: Path) -> None:
    own_ca = API_TABLE.replace('url = "https://10.0.0.22"', 'url = "https://10.0.0.23/"\nca_file = "other-ca.pem"')
    certificate_identity = OPCUA_TABLE.replace('user = "printfleet"\npassword_file = "opcua-password"\n',
                                               'certificate = "c.der"\nprivate_key = "c.pem"\n')
    settings = _load(tmp_path, LEGACY + API_TABLE + own_ca + certificate_identity)
    ca = (tmp_path / "site-ca.pem").resolve()
    printers = settings.all_printers()
    assert [p.url for p in printers] == ["https://10.0.0.21/printers/p001/", "https://10.0.0.21/printers/p002/",
                                         "https://10.0.0.22/", "https://10.0.0.23/", "opc.tcp://10.0.0.30:4840"]
    assert [p.driver for p in printers] == ["printer-api"] * 4 + ["opcua"]
    assert printers[2] == PrinterApiPrinter("https://10.0.0.22/", ca)
    assert printers[3] == PrinterApiPrinter("https://10.0.0.23/", (tmp_path / "other-ca.pem").resolve())
    opcua = printers[4]
    assert isinstance(opcua, OpcUaPrinter) and opcua.user is None and opcua.password_file is None
    assert opcua.certificate == (tmp_path / "c.der").resolve() and opcua.private_key == (tmp_path / "c.pem").resolve()


@pytest.mark.parametrize("text", [LEGACY + API_TABLE + OPCUA_TABLE, HEAD + OPCUA_TABLE,
                                  HEAD + '[printers]\nca_file = "ca.pem"\n' + API_TABLE])
def test_render_then_load_gives_the_same_settings(tmp_path: Path, text: str) -> None:
    settings = _load(tmp_path, text)
    again = tmp_path / "again.toml"
    again.write_text(render(settings))
    assert CollectorSettings.load(again, env={}) == settings


def _error(tmp_path: Path, text: str) -> CollectorConfigError:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(CollectorConfigError) as error:
        CollectorSettings.load(path, env={})
    assert str(error.value).startswith(f"config file {path}: ") and "\n" not in str(error.value)
    return error.value


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (HEAD, "[printers] urls", "missing key [printers] urls (an array of strings) or [[printer]] tables"),
        (HEAD + '[printer]\ndriver = "opcua"\n', "printer",
         "printer must be an array of tables ([[printer]]), got a table"),
        (HEAD + '[[printer]]\nurl = "https://p/"\n', "[[printer]] #1 driver",
         "missing key [[printer]] #1 driver (a string)"),
        (HEAD + API_TABLE.replace('"printer-api"', '"opc-ua"'), "[[printer]] #1 driver",
         "[[printer]] #1 driver must be one of 'printer-api', 'opcua', got \"opc-ua\" (did you mean opcua?)"),
        (HEAD + API_TABLE.replace('"printer-api"', "1"), "[[printer]] #1 driver",
         "[[printer]] #1 driver must be a string, got an integer (1)"),
        (HEAD + '[[printer]]\ndriver = "printer-api"\n', "[[printer]] #1 url", "missing key [[printer]] #1 url (a string)"),
        (HEAD + API_TABLE + OPCUA_TABLE.replace('user = "printfleet"', 'ca_file = "x.pem"\nuser = "printfleet"'),
         "[[printer]] #2 ca_file", "unknown key [[printer]] #2 ca_file for driver 'opcua' (a key of driver 'printer-api'); "
                                   "known keys for it: driver, "
                                   "url, server_certificate, user, password_file, certificate, private_key, machines"),
        (HEAD + API_TABLE + 'cafile = "x.pem"\n', "[[printer]] #1 cafile",
         "unknown key [[printer]] #1 cafile for driver 'printer-api' (did you mean ca_file?)"),
        (HEAD + API_TABLE.replace("https://", "opc.tcp://"), "[[printer]] #1 url",
         "[[printer]] #1 url must start with https:// or http:// for driver 'printer-api', got \"opc.tcp://10.0.0.22\""),
        (HEAD + OPCUA_TABLE.replace("opc.tcp://", "https://"), "[[printer]] #1 url",
         "[[printer]] #1 url must start with opc.tcp:// for driver 'opcua'"),
        (HEAD + OPCUA_TABLE.replace('server_certificate = "certs/machine.der"\n', ""),
         "[[printer]] #1 server_certificate",
         "missing key [[printer]] #1 server_certificate (a path (string)): the machine's certificate, pinned"),
        (HEAD + OPCUA_TABLE.replace('server_certificate = "certs/machine.der"', "server_certificate = 3"),
         "[[printer]] #1 server_certificate", "[[printer]] #1 server_certificate must be a path (string), got an integer"),
        (HEAD + OPCUA_TABLE.replace('password_file = "opcua-password"\n', ""), "[[printer]] #1 password_file",
         "missing key [[printer]] #1 password_file (a path (string)): user needs it"),
        (HEAD + OPCUA_TABLE.replace('user = "printfleet"\n', ""), "[[printer]] #1 user",
         "missing key [[printer]] #1 user (a string): password_file needs it"),
        (HEAD + OPCUA_TABLE.replace('user = "printfleet"\npassword_file = "opcua-password"\n', 'certificate = "c.der"\n'),
         "[[printer]] #1 private_key", "missing key [[printer]] #1 private_key (a path (string)): certificate needs it"),
        (HEAD + OPCUA_TABLE.replace('user = "printfleet"\npassword_file = "opcua-password"\n', ""),
         "[[printer]] #1 user", "an identity is needed: user + password_file, or certificate + private_key"),
        (HEAD + OPCUA_TABLE.replace('user = "printfleet"', 'user = "printfleet"\ncertificate = "c.der"\n'
                                                           'private_key = "c.pem"'),
         "[[printer]] #1 certificate", "[[printer]] #1 has two identities: user + password_file, or certificate + "
                                       "private_key, not both"),
        (HEAD + OPCUA_TABLE.replace('user = "printfleet"', 'user = ""'), "[[printer]] #1 user",
         "[[printer]] #1 user must not be empty"),
        (HEAD + OPCUA_TABLE.replace('["AM-1", "AM-2"]', "[]"), "[[printer]] #1 machines",
         "[[printer]] #1 machines must be distinct, non-empty browse names (omit it for every machine), got []"),
        (HEAD + OPCUA_TABLE.replace('["AM-1", "AM-2"]', '["AM-1", "AM-1"]'), "[[printer]] #1 machines",
         "machines must be distinct"),
        (HEAD + OPCUA_TABLE.replace('["AM-1", "AM-2"]', '"AM-1"'), "[[printer]] #1 machines",
         '[[printer]] #1 machines must be an array of strings, got a string ("AM-1")'),
        (LEGACY + API_TABLE.replace("https://10.0.0.22", "https://10.0.0.21/printers/p002"), "[[printer]] #1 url",
         "[[printer]] #1 url: printer https://10.0.0.21/printers/p002/ is listed twice (first as [printers] urls #2)"),
        (HEAD + OPCUA_TABLE + OPCUA_TABLE, "[[printer]] #2 url",
         "printer opc.tcp://10.0.0.30:4840 is listed twice (first as [[printer]] #1 url)"),
    ],
)
def test_mistakes_in_printer_tables_name_the_key_and_what_was_expected(
        tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = _error(tmp_path, text)
    assert error.key == key
    assert problem in str(error), str(error)


def test_printer_is_among_the_known_top_level_keys(tmp_path: Path) -> None:
    error = _error(tmp_path, "printers_ = 1\n" + LEGACY)
    assert str(error).endswith("[gateway], [printers], [cadence], [[printer]]")


async def test_the_collector_builds_an_opcua_driver_per_table_and_its_key_pair_once(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(HEAD + OPCUA_TABLE)
    settings = CollectorSettings.load(path, env={}, status_port=-1)
    collector = Collector(settings)
    await collector.start()
    try:
        assert [d.name for d in collector.drivers] == ["opcua"]
        # Before a session found the machines, the server stands for them on the status page.
        assert [(s.base_url, s.driver) for s in collector.printer_statuses()] == [("opc.tcp://10.0.0.30:4840", "opcua")]
        assert collector.status()["printers"][0]["driver"] == "opcua"
        assert collector.opcua_certificate is not None
        assert collector.opcua_certificate.cert_file == settings.state_dir / "opcua" / "collector-cert.der"
    finally:
        await collector.stop()
    cert = settings.state_dir / "opcua" / "collector-cert.der"
    made = cert.read_bytes()
    again = Collector(settings)
    await again.start()
    await again.stop()
    assert cert.read_bytes() == made  # the site trusts it once: the same pair on every start


def test_printfleet_collector_prints_an_opcua_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.toml"
    path.write_text(HEAD + OPCUA_TABLE)
    assert main(["collector", "--config", str(path), "--print-config"]) == 0
    assert 'driver = "opcua"' in capsys.readouterr().out
