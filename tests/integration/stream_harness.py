"""Helpers for the stream-worker tests: produce simulator records to the telemetry topics,
run `printfleet worker` as a real process, and read what it publishes.

Topics are the real shared ones (telemetry.*, alerts, ...); every test uses its own site
id and simulator seed, so it reads back only its own printers' records."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from common.kafka import admin
from common.kafka.topics import DEAD_LETTER, PARTITIONS, pipeline_topics, telemetry_topics, topic_for
from deploy.settings import StackSettings
from schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load_default()
OUTPUT_TOPICS = tuple(topic_for(k) for k in ("fleet_state", "alert", "utilisation", "update_advisory", "benchmark")) + (DEAD_LETTER,)


async def ensure_topics(bootstrap: str) -> None:
    """Create the registry's topics that do not exist yet, as the components do."""
    await admin.apply(StackSettings.from_env().kafka(bootstrap_servers=bootstrap), pipeline_topics())


async def produce(bootstrap: str, records: Iterable[tuple[str, dict[str, Any]]], *, raw: Iterable[tuple[str, bytes, bytes]] = (),
                  uploads_of: int = 5_000) -> int:
    """Encode and send (kind, record) pairs keyed by device; `raw` adds (topic, key, value)
    messages as they are. Returns how many were sent, after Kafka acknowledged all.
    Every `uploads_of` records (the collector's default upload_max_records) are committed
    in one transaction, as the gateway commits an upload: the worker then reads them in
    upload order across topics. Sent one by one they land topic by topic as the producer's
    batches fill, and a reader can see heartbeats before the counters sent ahead of them."""
    await ensure_topics(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                transactional_id=f"it-upload-{uuid.uuid4().hex}")
    await producer.start()
    messages = [(topic_for(kind), str(record["device_id"]).encode(), REGISTRY.encode(kind, record))
                for kind, record in records]
    messages += list(raw)
    try:
        for at in range(0, len(messages), uploads_of):
            await producer.begin_transaction()
            futures = [await producer.send(topic, value, key=key) for topic, key, value in messages[at:at + uploads_of]]
            await producer.commit_transaction()
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(messages)


class Outputs:
    """What the worker publishes from the moment this is entered, kept per topic; only
    records of `site_id` (dead letters: all). Enter it before producing the input."""

    def __init__(self, bootstrap: str, site_id: str, *, extra_topics: Iterable[str] = ()) -> None:
        """`site_id` "" keeps every site's records (and benchmarks, which have none)."""
        self.bootstrap, self.site_id = bootstrap, site_id
        self.topics = (*OUTPUT_TOPICS, *extra_topics)
        self.records: dict[str, list[dict[str, Any]]] = {t: [] for t in self.topics}
        self.apps: dict[str, list[str]] = {t: [] for t in self.topics}  # the app id that produced each
        self.dead_letters: list[tuple[bytes, dict[str, str]]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Outputs:
        await ensure_topics(self.bootstrap)
        # Committed records only, as every printfleet consumer reads them.
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                          isolation_level="read_committed")
        await self._consumer.start()
        tps = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
        self._consumer.assign(tps)
        for tp, end in (await self._consumer.end_offsets(tps)).items():
            self._consumer.seek(tp, end)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        for tp, batch in (await self._consumer.getmany(timeout_ms=300, max_records=20000)).items():
            for m in batch:
                if tp.topic == DEAD_LETTER:
                    self.dead_letters.append((m.value, {k: v.decode() for k, v in m.headers}))
                    continue
                record = REGISTRY.decode(m.value).record
                if not self.site_id or record["site_id"] == self.site_id:
                    self.records[tp.topic].append(record)
                    self.apps[tp.topic].append(dict(m.headers).get("app_id", b"").decode())

    async def until(self, done: Callable[[Outputs], bool], worker: Worker | None = None, timeout_s: float = 120.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done(self):
            if worker is not None:
                worker.check()
            assert asyncio.get_running_loop().time() < deadline, f"timed out waiting; have {self.summary()}"
            await self.poll()

    def topic(self, name: str) -> list[dict[str, Any]]:
        return self.records[name]

    def of(self, kind: str, app_id: str | None = None) -> list[dict[str, Any]]:
        """Records of `kind` in topic order; only those produced by `app_id` if given."""
        topic = topic_for(kind)
        if app_id is None:
            return self.records[topic]
        return [r for r, app in zip(self.records[topic], self.apps[topic]) if app == app_id]

    async def settle(self, quiet_s: float = 3.0) -> None:
        """Poll until nothing new arrived for `quiet_s` (outputs made just before the wait ended)."""
        loop = asyncio.get_running_loop()
        count, since = -1, loop.time()
        while loop.time() - since < quiet_s:
            await self.poll()
            now = sum(map(len, self.records.values()))
            if now != count:
                count, since = now, loop.time()

    def repeated_ids(self) -> dict[str, int]:
        """Per topic, how many records carry an id already seen on it (0 everywhere:
        every output reached Kafka once)."""
        return {t: len(rs) - len({r["record_id"] for r in rs}) for t, rs in self.records.items()}

    def summary(self) -> str:
        return ", ".join(f"{t}: {len(v)}" for t, v in self.records.items()) + f", dead letters: {len(self.dead_letters)}"


async def settled(workers: Iterable[Worker], timeout_s: float = 60.0) -> None:
    """Wait until the workers (of one group) finished rebalancing and agree on the generation.
    A group that starts at the latest offsets must not be sent records before: a partition
    still being assigned would start after them."""
    workers = list(workers)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        generations = {tuple(re.findall(r"generation (\d+)\)", w.log.read_text(errors="replace"))[-1:]) for w in workers}
        if all(w.settled() for w in workers) and len(generations) == 1:
            return
        for w in workers:
            w.check()
        assert asyncio.get_running_loop().time() < deadline, "the group never settled"
        await asyncio.sleep(0.3)


class Worker:
    """`printfleet worker` as a subprocess, logging to a file."""

    def __init__(self, bootstrap: str, app_id: str, folder: Path, **env: str) -> None:
        n = len(list(folder.glob(f"{app_id}-*.log")))  # workers of one app id each get their own files
        self.log = folder / f"{app_id}-{n}.log"
        self.log.touch()
        self.bootstrap = bootstrap
        self.env = {**os.environ, "PRINTFLEET_WORKER_APP_ID": app_id,
                    "PRINTFLEET_WORKER_DATA_DIR": str(folder / f"data-{app_id}-{n}"), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "printfleet", "worker", "--loglevel", "info", "--ops-port", "0", "--kafka-bootstrap", self.bootstrap,
                 "--replication-factor", "1", "--min-insync-replicas", "1"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        return self

    def check(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"worker died:\n{self.tail()}"

    def status(self) -> dict[str, int]:
        """Counters of the worker's latest status line: applied, repeats, missing,
        checkpoints (empty before the first line)."""
        lines = re.findall(r"^worker: applied .*$", self.log.read_text(errors="replace"), re.M)
        return {k: int(v) for k, v in re.findall(r"(applied|repeats|missing|checkpoints) (\d+)", lines[-1])} if lines else {}

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    async def ready(self, times: int = 1, timeout_s: float = 90.0) -> None:
        """Wait for the `times`-th "Ready" in the log (tables recovered) and the telemetry
        reader started on the assigned partitions."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.log.read_text(errors="replace").count("[^Worker]: Ready") < times or not self.settled():
            self.check()
            assert asyncio.get_running_loop().time() < deadline, f"worker never became ready:\n{self.tail()}"
            await asyncio.sleep(0.2)

    def settled(self) -> bool:
        """The last rebalance finished: the worker started reading its telemetry partitions
        after it last joined."""
        text = self.log.read_text(errors="replace")
        return text.rfind("Reading telemetry partitions") > text.rfind("Joined group")

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            await asyncio.to_thread(self.proc.wait, 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
