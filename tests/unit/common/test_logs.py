"""`common.logs`: the JSON log format, the handler `printfleet --log-format` sets, and
the throttle that keeps a printer that stays away to a line a minute."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from common import logs
from printfleet.cli import build_parser
from producers.collector.config import Cadence
from producers.collector.device_records import RecordBuilder, Site
from producers.collector.cursors import CursorStore
from producers.collector.device_sink import DeviceSink, SinkShared
from producers.collector.drivers.printer_api import PrinterApiDriver
from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import Spool
from schemas import SchemaRegistry


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("printfleet.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_json_lines_carry_each_key_value_pair_as_a_field_and_the_whole_message() -> None:
    line = logs.JsonFormatter().format(_record("event=printer_unavailable printer=%s error=%s", "https://10.0.0.7/", "refused"))
    out = json.loads(line)
    assert out["event"] == "printer_unavailable" and out["printer"] == "https://10.0.0.7/"
    assert out["level"] == "warning" and out["logger"] == "printfleet.test"
    assert out["message"] == "event=printer_unavailable printer=https://10.0.0.7/ error=refused"
    assert out["time"].endswith("+00:00")
    assert "\n" not in line


def test_a_pair_cannot_overwrite_the_fixed_fields_and_a_traceback_goes_in_exception() -> None:
    out = json.loads(logs.JsonFormatter().format(_record("level=fake logger=x event=e", exc=True)))
    assert out["level"] == "warning" and out["logger"] == "printfleet.test" and out["event"] == "e"
    assert "RuntimeError: boom" in out["exception"]


def test_configure_replaces_the_handlers_and_sets_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure(verbose=True, log_format="json")
        assert root.level == logging.DEBUG
        logging.getLogger("printfleet.t").debug("event=x n=%d", 3)
        assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["n"] == "3"
        logs.configure(log_format="text")
        assert root.level == logging.WARNING and len(root.handlers) == 1
        logging.getLogger("printfleet.t").warning("event=y")
        assert "level=WARNING logger=printfleet.t event=y" in capsys.readouterr().err
        with pytest.raises(ValueError, match="log format 'xml'"):
            logs.configure(log_format="xml")  # type: ignore[arg-type]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


@pytest.mark.parametrize("argv", [
    ["--log-format", "json", "-v", "topics", "plan"],
    ["topics", "--log-format", "json", "plan", "-v"],
    ["-v", "topics", "plan", "--log-format", "json"],
])
def test_log_format_and_verbose_go_anywhere_on_the_command_line(argv: list[str]) -> None:
    args, _ = build_parser().parse_known_args(argv)
    assert args.log_format == "json" and args.verbose is True


def test_the_throttle_lets_one_line_a_minute_through_and_counts_the_rest() -> None:
    throttle = logs.Throttle(60.0)
    assert throttle.allow(0.0) == 0
    assert [throttle.allow(t) for t in (10.0, 20.0, 59.9)] == [None, None, None]
    assert throttle.allow(60.0) == 3
    assert throttle.allow(61.0) is None
    assert throttle.reset() == 1
    assert throttle.allow(62.0) == 0  # a new failure after a recovery is logged at once


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_printer_is_one_line_with_its_url_not_one_per_poll(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = SchemaRegistry.load_default()
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=4096, fsync=False)
    spool.open()
    url = f"http://127.0.0.1:{_closed_port()}/"
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        shared = SinkShared(builder=RecordBuilder(registry, Site("s", b"secret")), registry=registry,
                            spool=AsyncSpool(spool), cursors=CursorStore(tmp_path / "cursors.json"),
                            unmappable_dir=tmp_path / "unmappable")
        poller = PrinterApiDriver(url, DeviceSink(url, "printer-api", shared), session=session, ssl_context=False,
                                  cadence=Cadence(heartbeat_s=0.02))
        with caplog.at_level(logging.WARNING, logger="producers.collector.device_sink"):
            task = asyncio.create_task(poller.run(stop))
            await asyncio.sleep(1.0)
            stop.set()
            await task
    spool.close()
    lines = [r.getMessage() for r in caplog.records if "printer_unavailable" in r.getMessage()]
    assert poller.status.poll_failures >= 10  # it kept polling
    assert len(lines) == 1 and url in lines[0], lines
    assert not any(r.exc_info for r in caplog.records)  # an expected failure: no traceback
