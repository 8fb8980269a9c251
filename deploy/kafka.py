"""The local Apache Kafka broker: single node, KRaft, broker and controller in one JVM.

The jars come from Maven Central through `deploy/kafka/pom.xml` (`mvn package` copies
them to `deploy/kafka/target/lib`). Start formats the storage on first use, launches
`kafka.Kafka`, and returns only once a client got metadata from the broker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from common.kafka import clients
from deploy.errors import NotInstalled, StartFailed
from deploy.process import ServerProcess, check_port_free, is_alive, log_tail
from deploy.settings import StackSettings

_CONFIG_DIR = Path(__file__).resolve().parent / "kafka"
_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


@dataclass(frozen=True)
class KafkaServer:
    settings: StackSettings

    @property
    def home(self) -> Path:
        return self.settings.state_dir / "kafka"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.settings.logs / "kafka"

    @property
    def process(self) -> ServerProcess:
        return ServerProcess("kafka", self.home / "kafka.pid", marker="kafka.Kafka")

    def check_ports(self) -> None:
        check_port_free(self.settings.kafka_port, "Kafka")
        check_port_free(self.settings.kafka_controller_port, "Kafka controller")

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise NotInstalled("java not found on PATH: Kafka needs Java 17 or newer")
        return java

    def _classpath(self) -> str:
        lib = self.settings.kafka_lib
        if not any(lib.glob("kafka_2.13-*.jar")):
            raise NotInstalled(
                f"no Kafka jars in {lib}: run `mvn -q -B -f deploy/kafka/pom.xml package` "
                "(the bootstrap in `make test` / `make demo` does it)"
            )
        return f"{lib}/*"

    def _write_config(self) -> Path:
        s = self.settings
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data_dir}",
                    # One node: every internal topic has a single replica.
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Fewer internal partitions and threads than the defaults suit two cores.
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.num.partitions=10",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "num.partitions=1",
                    # Topics come from the registry only (common.kafka.admin): a client
                    # naming a missing topic gets an error instead of a topic made with the
                    # broker's defaults (how `deadletter` once got 1 partition or 6).
                    "auto.create.topics.enable=false",
                    # Groups form at once instead of waiting 3 s for more members.
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "log.segment.bytes=268435456",
                    "",
                ]
            )
        )
        return props

    def _format_if_new(self, java: str, classpath: str, props: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        result = subprocess.run(
            # `--cluster-id=ID` in one word: a random ID may start with "-".
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             f"--cluster-id={cluster_id}", f"--config={props}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StartFailed(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")

    def launch(self) -> int:
        """Format storage if new and start the JVM; returns its PID without waiting."""
        java, classpath = self._java(), self._classpath()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        props = self._write_config()
        self._format_if_new(java, classpath, props)
        heap = self.settings.kafka_heap
        argv = [
            java, f"-Xms{heap}", f"-Xmx{heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={_CONFIG_DIR / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(props),
        ]
        return self.process.launch(argv, cwd=self.home, log_file=self.log_dir / "kafka.out")

    async def wait_ready(self, pid: int, timeout_s: float) -> float:
        """Wait until a client gets metadata listing this broker; returns seconds waited."""
        started = time.monotonic()
        while True:
            # is_alive, not process.pid(): until exec the child's command line is still ours.
            if not is_alive(pid):
                raise StartFailed(
                    f"Kafka exited during start-up; last lines of {self.log_dir}:\n"
                    f"{log_tail(self.log_dir / 'kafka.out')}\n{log_tail(self.log_dir / 'server.log')}"
                )
            if await self.answers():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise StartFailed(
                    f"Kafka did not answer on {self.settings.kafka_bootstrap} within {timeout_s:.0f} s; "
                    f"see {self.log_dir / 'server.log'}"
                )
            await asyncio.sleep(0.25)

    async def answers(self) -> bool:
        """True if a metadata request to the broker lists at least one broker."""
        client = clients.admin_client(replace(self.settings.kafka(), request_timeout_s=2.0))
        logger = logging.getLogger("aiokafka")
        level = logger.level
        logger.setLevel(logging.CRITICAL)  # connection refused is expected while it boots
        try:
            await client.start()
            return bool((await client.describe_cluster()).get("brokers"))
        except Exception:
            return False
        finally:
            logger.setLevel(level)
            await client.close()

    def version(self) -> str | None:
        """The version the running broker logged at start-up."""
        found = None
        for path in sorted(self.log_dir.glob("server.log*"), reverse=True):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for match in _VERSION_LINE.finditer(text):
                found = match.group(1)
        return found
