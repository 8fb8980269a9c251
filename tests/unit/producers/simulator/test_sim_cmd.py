"""`printfleet simulate`: prints the CA and base URLs, then progress; stops cleanly."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from printfleet import cmd_simulate
from producers.simulator import SimulatorSettings
from sim_helpers import START_MS

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[4]


async def test_serve_prints_urls_and_progress_until_stopped(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    settings = SimulatorSettings(printers=2, port=0, ca_dir=tmp_path, start_ms=START_MS, acceleration=600.0, progress_interval_s=0.1)
    task = asyncio.create_task(cmd_simulate.serve(settings, out=out, stop=stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if out.getvalue().count("sim 2025-") >= 2:
            break
    stop.set()
    assert await task == 0
    text = out.getvalue()
    assert f"site CA:    {tmp_path / 'ca.pem'}" in text
    assert "/printers/p001/" in text and "/printers/p002/" in text
    assert "printing" in text and "emitted events" in text and text.endswith("simulator stopped\n")


def test_ctrl_c_stops_the_process_cleanly(tmp_path: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from printfleet import cmd_simulate\n"
        "parser = argparse.ArgumentParser()\n"
        "cmd_simulate.register(parser.add_subparsers())\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "sys.exit(args.handler(args))\n"
    )
    env = {**os.environ, "PRINTFLEET_SIM_PRINTERS": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "simulate", "--port", "0", "--ca-dir", str(tmp_path), "--progress-interval", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        assert lines[0].startswith("site CA:") and any("/printers/p002/" in line for line in lines)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.endswith("simulator stopped\n")
