"""The local Apache Kafka cluster: KRaft, each node a broker and a controller in one JVM.

One node by default; `printfleet stack up --brokers 3` runs three JVMs on loopback that
form one controller quorum (a voter each) and replicate like a production cluster.
The jars come from Maven Central through `deploy/kafka/pom.xml` (`mvn package` copies
them to `deploy/kafka/target/lib`). Start formats the storage on first use, launches
`kafka.Kafka`, and returns only once a client got metadata listing the node.

Every node has four listeners: PLAINTEXT for the local tools, the controller's, SASL_SSL
with SCRAM-SHA-256/-512 and PLAIN, and SSL requiring a client certificate (mutual TLS).
Their certificates, CA and users are made at the first start (`deploy.kafka_secrets`)
so that the security settings are tested against a real broker. Authorisation is on:
the PLAINTEXT listener's clients, `printfleet` and the certificate `CN=printfleet-client`
are super users; `reader` has no ACL at all.
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
from deploy.errors import NotInstalled, StackError, StartFailed
from deploy.kafka_secrets import CLIENT_CERTIFICATE, SUPER_USER, KafkaSecrets
from deploy.process import ServerProcess, check_port_free, is_alive, log_tail
from deploy.settings import StackSettings

_CONFIG_DIR = Path(__file__).resolve().parent / "kafka"
_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


@dataclass(frozen=True)
class KafkaServer:
    """Node `node` (1-based) of the stack's cluster; its ports are `StackSettings`'s."""

    settings: StackSettings
    node: int = 1

    @property
    def name(self) -> str:
        return "kafka" if self.node == 1 else f"kafka-{self.node}"

    @property
    def home(self) -> Path:
        return self.settings.state_dir / self.name

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.settings.logs / self.name

    @property
    def process(self) -> ServerProcess:
        return ServerProcess(self.name, self.home / "kafka.pid", marker="kafka.Kafka")

    @property
    def port(self) -> int:
        return self.settings.kafka_node_port(self.node)

    def check_ports(self) -> None:
        s, n = self.settings, self.node
        check_port_free(s.kafka_node_port(n), "Kafka")
        check_port_free(s.kafka_node_port(n, s.kafka_controller_port), "Kafka controller")
        check_port_free(s.kafka_node_port(n, s.kafka_sasl_ssl_port), "Kafka SASL_SSL")
        check_port_free(s.kafka_node_port(n, s.kafka_ssl_port), "Kafka SSL")

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

    def _write_config(self, secrets: KafkaSecrets) -> Path:
        s, n = self.settings, self.node
        port, sasl, mtls = (s.kafka_node_port(n), s.kafka_node_port(n, s.kafka_sasl_ssl_port),
                            s.kafka_node_port(n, s.kafka_ssl_port))
        controller = s.kafka_node_port(n, s.kafka_controller_port)
        voters = ",".join(f"{i}@127.0.0.1:{s.kafka_node_port(i, s.kafka_controller_port)}"
                          for i in range(1, s.kafka_brokers + 1))
        replicas = min(3, s.kafka_brokers)
        min_isr = max(1, replicas - 1)
        jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={n}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl},SSL://127.0.0.1:{mtls},"
                    f"CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl},"
                    f"SSL://127.0.0.1:{mtls}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
                    # Mutual TLS: a client without a certificate the CA signed is refused.
                    "listener.name.ssl.ssl.client.auth=required",
                    "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                    f"listener.name.sasl_ssl.plain.sasl.jaas.config={secrets.plain_jaas()}",
                    f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas_scram}",
                    f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas_scram}",
                    "ssl.keystore.type=PEM",
                    f"ssl.keystore.location={secrets.keystore}",
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={secrets.ca_file}",
                    # The PLAINTEXT and controller listeners' clients (ANONYMOUS) and the
                    # SASL user `printfleet` may do anything; any other user needs ACLs.
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    f"super.users=User:ANONYMOUS;User:{SUPER_USER};User:CN={CLIENT_CERTIFICATE}",
                    f"log.dirs={self.data_dir}",
                    # Internal topics replicated like production ones where there are nodes
                    # enough: three replicas, two in sync for a write.
                    f"offsets.topic.replication.factor={replicas}",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_isr}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
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

    def _format_if_new(self, java: str, classpath: str, props: Path, secrets: KafkaSecrets) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        scram = [f"--add-scram={m}=[name={user},password={password}]"
                 for user, password in secrets.users().items() for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")]
        result = subprocess.run(
            # `--cluster-id=ID` in one word: a random ID may start with "-".
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             f"--cluster-id={self._cluster_id()}", f"--config={props}", *scram],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StartFailed(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")

    def _cluster_id(self) -> str:
        """The cluster's id, shared by its nodes; made by the first node formatted. A state
        folder keeps its number of nodes: the quorum's voters are fixed at format."""
        path = self.settings.state_dir / "kafka-cluster"
        brokers = self.settings.kafka_brokers
        if path.exists():
            cluster_id, made_for = path.read_text().split()
            if int(made_for) != brokers:
                raise StackError(
                    f"{self.settings.state_dir} holds a Kafka cluster of {made_for} node(s), not {brokers}: "
                    "`printfleet stack down` and remove the folder, or use another --state-dir"
                )
            return cluster_id
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        path.write_text(f"{cluster_id} {brokers}\n")
        return cluster_id

    def launch(self) -> int:
        """Format storage if new and start the JVM; returns its PID without waiting."""
        java, classpath = self._java(), self._classpath()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        secrets = KafkaSecrets.ensure(self.settings.kafka_secrets_dir)
        props = self._write_config(secrets)
        self._format_if_new(java, classpath, props, secrets)
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
        """Wait until a client gets metadata listing this node; returns seconds waited."""
        started = time.monotonic()
        while True:
            # is_alive, not process.pid(): until exec the child's command line is still ours.
            if not is_alive(pid):
                raise StartFailed(
                    f"Kafka exited during start-up; last lines of {self.log_dir}:\n"
                    f"{log_tail(self.log_dir / 'kafka.out')}\n{log_tail(self.log_dir / 'server.log')}"
                )
            if await self.answers() and (self.node != 1 or await self.coordinators_found()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise StartFailed(
                    f"Kafka node {self.node} did not answer on 127.0.0.1:{self.port} within {timeout_s:.0f} s; "
                    f"see {self.log_dir / 'server.log'}"
                )
            await asyncio.sleep(0.25)

    async def answers(self) -> bool:
        """True if a metadata request to this node lists it among the brokers."""
        settings = replace(self.settings.kafka({}), bootstrap_servers=f"127.0.0.1:{self.port}", request_timeout_s=2.0)
        client = clients.admin_client(settings)
        logger = logging.getLogger("aiokafka")
        level = logger.level
        logger.setLevel(logging.CRITICAL)  # connection refused is expected while it boots
        try:
            await client.start()
            brokers = (await client.describe_cluster()).get("brokers", ())
            return any(b.get("node_id") == self.node for b in brokers)
        except Exception:
            return False
        finally:
            logger.setLevel(level)
            await client.close()

    async def coordinators_found(self) -> bool:
        """True once the cluster names a group and a transaction coordinator. The first
        request makes Kafka create __consumer_offsets and __transaction_state; until they
        have leaders every new consumer group and transactional producer is told "not
        available" and aiokafka logs ERROR lines, which a first `printfleet demo` on a
        fresh stack would show. Asked of node 1 only: once is enough for the cluster."""
        settings = replace(self.settings.kafka({}), bootstrap_servers=f"127.0.0.1:{self.port}", request_timeout_s=2.0)
        client = clients.admin_client(settings)
        try:
            await client.start()
            await client.find_coordinator("printfleet-stack-start", 0)
            await client.find_coordinator("printfleet-stack-start", 1)
            return True
        except Exception:
            return False
        finally:
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
