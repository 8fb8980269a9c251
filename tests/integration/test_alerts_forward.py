"""`printfleet alerts forward` on the real stack: the stream worker raises alerts from
simulated printhead errors; forwarders (real processes) POST each lifecycle change to
receivers that are real aiohttp servers of this test.

The main receiver answers 500 to its first requests, is stopped while changes are still
coming and started again on the same port; the forwarder is stopped (SIGTERM) while it
retries and started again in the same group. Every change in the topic reaches the
receiver, acknowledged exactly once, in order per printer, under one id each with one
body each, every signature valid. A group that starts at the end and stops before the first change resumes at
that start: nothing is lost. A second forwarder with rule and severity filters
sends only what they keep to a receiver that refuses everything with 422: each refused
change is on the dead-letter topic with the receiver's answer."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from stream_harness import REGISTRY, Outputs, Worker, produce
from stream_scenarios import Printer, event_storm

from deploy.settings import StackSettings
from sinks.webhook.signing import ID_HEADER, verify

T0 = 1_748_736_000_000  # 2025-06-01T00:00:00Z
CODE = "0057-0001-0053"  # a printhead error
SECRET = b"s3cret-shared-with-the-receiver"


@dataclass
class Receiver:
    """A webhook receiver: checks each signature, answers 500 to the first `failing`
    requests, then `status`; keeps every attempt (id, body, status answered)."""

    failing: int = 0
    status: int = 200
    answer: str = "ok"
    port: int = 0
    attempts: list[tuple[str, bytes, int]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = verify(SECRET, request.headers, body, time.time())
        if problem is not None:
            self.bad.append(problem)
            return web.Response(status=401, text=problem)
        status = self.status
        if self.failing > 0:
            self.failing -= 1
            status = 500
        self.attempts.append((request.headers[ID_HEADER], body, status))
        return web.Response(status=status, text=self.answer if status >= 400 else "ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def acknowledged(self) -> list[str]:
        return [i for i, _, status in self.attempts if status == 200]


class Forwarder:
    """`printfleet alerts forward` as a subprocess, its stderr in a file."""

    def __init__(self, folder: Path, name: str, *args: str) -> None:
        self.log = folder / f"{name}.log"
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "printfleet", "alerts", "forward", *args],
                                         stdout=subprocess.DEVNULL, stderr=err)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def until(self, done: Callable[[str], bool], timeout_s: float = 90) -> str:
        deadline = time.monotonic() + timeout_s
        while not done(self.text()):
            assert self.proc.poll() is None, f"the forwarder exited:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"timed out; forwarder log:\n{self.text()[-3000:]}"
            await asyncio.sleep(0.2)
        return self.text()

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_forward_survives_failing_and_restarted_receiver_and_forwarder(stack: StackSettings, tmp_path: Path) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    first, second = (Printer(site, f"dev-{uuid.uuid4().hex[:12]}", T0) for _ in range(2))
    first_key = f"system-event:{first.device_id}:{CODE}"
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_bytes(SECRET + b"\n")
    group = f"it-forward-{site}"
    common = ["--secret-file", str(secret_file), "--site", site, "--from-beginning", "--retry-max-s", "1",
              "--kafka-bootstrap", stack.kafka_bootstrap]
    receiver = Receiver(failing=3)
    refuser = Receiver(status=422, answer="no such customer")
    late = Receiver()  # of a group that starts at the end, and is down while the alerts come
    url, refuser_url, late_url = await receiver.start(), await refuser.start(), await late.start()
    worker = Worker(stack.kafka_bootstrap, f"alerts-fwd-{site}", tmp_path, PRINTFLEET_WORKER_START_AT="latest").start()
    forwarders: list[Forwarder] = []
    try:
        await worker.ready()
        async with Outputs(stack.kafka_bootstrap, site) as out:
            one = Forwarder(tmp_path, "forward-1", "--webhook", url, "--group", group, "--ops-port", "-1", *common)
            picky = Forwarder(tmp_path, "forward-picky", "--webhook", refuser_url, "--group", f"{group}-picky",
                              "--rule", "system-event", "--severity", "ERROR", "--refused-attempts", "2",
                              "--ops-port", "-1", *common)
            at_end = [a for a in common if a != "--from-beginning"]
            early = Forwarder(tmp_path, "forward-early", "--webhook", late_url, "--group", f"{group}-late",
                              "--ops-port", "-1", *at_end)
            forwarders += [one, picky, early]
            await one.until(lambda log: "Ctrl-C stops" in log)
            await early.until(lambda log: "Ctrl-C stops" in log)
            assert await early.stop() == 0

            # Part 1: the receiver answers 500 three times, then 200.
            await produce(stack.kafka_bootstrap, [*event_storm(first, 5)[:-1], *event_storm(second, 3)])

            def steps(key: str) -> list[str]:
                return [a["lifecycle"] for a in out.of("alert") if a["dedup_key"] == key]

            await out.until(lambda o: "RAISED" in steps(first_key), worker)
            await out.settle()
            part_one = {a["record_id"] for a in out.of("alert")}
            await _until(lambda: part_one <= set(receiver.acknowledged()), "part one acknowledged")
            assert [s for _, _, s in receiver.attempts[:3]] == [500, 500, 500]
            await asyncio.sleep(1.0)  # nothing in flight: every acknowledgement reached the forwarder

            # Part 2: the receiver goes away; a change comes; the forwarder retries, is
            # stopped, and both start again (same port, same group).
            await receiver.stop()
            await produce(stack.kafka_bootstrap, [event_storm(first, 5)[-1]])
            await out.until(lambda o: "CLEARED" in steps(first_key), worker)
            await one.until(lambda log: "event=webhook_attempt_failed" in log and "ClientConnectorError" in log)
            assert await one.stop() == 0
            assert "delivered" in one.text().splitlines()[-1]
            restarted_at, before = len(receiver.attempts), set(receiver.acknowledged())
            await receiver.start()
            two = Forwarder(tmp_path, "forward-2", "--webhook", url, "--group", group, "--ops-port", "0", *common)
            forwarders.append(two)
            await out.settle()
            everything = [a for a in out.of("alert")]
            ids = {a["record_id"] for a in everything}
            assert ids > part_one
            await _until(lambda: ids <= set(receiver.acknowledged()), "every change acknowledged")

            # metrics of the restarted forwarder: what it delivered after the restart
            log = await two.until(lambda text: "/metrics" in text)
            found = re.search(r"metrics (http://\S+/metrics)", log)
            assert found is not None, log
            after = sum(status == 200 for _, _, status in receiver.attempts[restarted_at:])
            assert after == len(ids - before) and before >= part_one
            wanted = f"printfleet_webhook_deliveries_total {float(after)}"
            async with ClientSession() as http:
                deadline = time.monotonic() + 10
                while True:
                    async with http.get(found[1]) as answer:
                        scrape = await answer.text()
                    if wanted in scrape or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
            assert wanted in scrape, scrape

            # The filtered forwarder: ERROR changes of system-event only, each refused twice, dead-lettered.
            kept = {a["record_id"] for a in everything if a["rule_id"] == "system-event" and a["severity"] == "ERROR"}
            assert kept and kept < ids
            await out.until(lambda o: kept <= _dead_lettered(o), worker)
            assert all(r.startswith("the receiver refused it 2 times, last with 422: 'no such customer'")
                       for r in _reasons(out, kept))
            await asyncio.sleep(1.0)
            assert {i for i, _, _ in refuser.attempts} == kept
            assert all(n == 2 for n in _counts(i for i, _, _ in refuser.attempts).values())

        # Every change delivered, acknowledged exactly once (none again after the
        # restarts), in the topic's order per printer, one body per id, one id per body.
        assert receiver.bad == [] and refuser.bad == []
        acknowledged = receiver.acknowledged()
        assert sorted(acknowledged) == sorted(ids), _counts(acknowledged)
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for delivery_id, body, _ in receiver.attempts:
            bodies[delivery_id].add(body)
        assert all(len(b) == 1 for b in bodies.values())
        assert len({b for bs in bodies.values() for b in bs}) == len(bodies)
        for delivery_id, (body,) in bodies.items():
            sent = json.loads(body)
            assert sent["id"] == delivery_id and sent["alert"]["site_id"] == site
            assert sent["event"] == f"alert.{sent['alert']['lifecycle'].lower()}"
        for printer in (first.device_id, second.device_id):
            in_topic = [a["record_id"] for a in everything if a["device_id"] == printer]
            assert [i for i in acknowledged if i in set(in_topic)] == in_topic

        # The group that started at the end and stopped before any change: its start
        # was committed, so it resumes there and sends every change, none lost.
        again = Forwarder(tmp_path, "forward-late", "--webhook", late_url, "--group", f"{group}-late",
                          "--ops-port", "-1", *at_end)
        forwarders.append(again)
        await _until(lambda: ids <= set(late.acknowledged()), "the late group's changes")
        assert sorted(late.acknowledged()) == sorted(ids)

        for forwarder in (two, picky, again):
            assert await forwarder.stop() == 0
        assert "filtered out" in picky.text() and ", 0 filtered out" not in picky.text()
    finally:
        for forwarder in forwarders:
            forwarder.kill()
        await receiver.stop()
        await refuser.stop()
        await late.stop()
        await worker.stop()


def _dead_lettered(out: Outputs) -> set[str]:
    return {REGISTRY.decode(value).record["record_id"] for value, headers in out.dead_letters
            if headers.get("deadletter.component") == "webhook"}


def _reasons(out: Outputs, ids: set[str]) -> list[str]:
    return [headers["deadletter.reason"] for value, headers in out.dead_letters
            if headers.get("deadletter.component") == "webhook" and headers.get("deadletter.stage") == "deliver"
            and REGISTRY.decode(value).record["record_id"] in ids]


def _counts(ids: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for i in ids:
        counts[i] += 1
    return dict(counts)
