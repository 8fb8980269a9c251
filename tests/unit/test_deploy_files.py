"""The deployment files (deploy/container, deploy/compose, deploy/k8s, deploy/systemd) say
only what printfleet understands. Docker, Kubernetes and systemd do not run here, so the
files are read as text and checked against the code:

- every `printfleet` command line they hold parses with the real parser
  (`printfleet.cli.build_parser`), and each `--flag` is spelt out exactly (argparse would
  take a prefix);
- every `PRINTFLEET_*` variable they name is one the code reads: the names come from the
  code, by asking `common.settings.build` itself which variables it reads for each
  (class, prefix) that any `build(...)` call in the packages passes it, plus the few the
  commands read by name (`env.get("PRINTFLEET_...")`, e.g. a password file, which is read
  before `build` and never becomes a field);
- every image is pinned: a digest, or a tag that is a full version (never `latest`, a bare
  name or a major.minor tag).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib
import io
import re
import typing
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import build
from printfleet.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "producers", "schemas", "streams", "sinks", "printfleet", "deploy")
DOCKERFILE = REPO / "deploy" / "container" / "Dockerfile"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
SYSTEMD = sorted((REPO / "deploy" / "systemd").glob("*.service"))
FILES = [DOCKERFILE, COMPOSE, *K8S, *SYSTEMD]
OUR_IMAGES = ("printfleet", "printfleet-collector")


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --- the code's side: the CLI and the settings' variables --------------------------------


def flag_errors(argv: list[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Why `printfleet <argv>` is not a command line printfleet accepts; [] when it is.
    The parser takes no abbreviated flag (`printfleet.cli`), so parsing is the check."""
    parser = parser or build_parser()
    if not argv:
        return ["no subcommand"]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help
            return []
        return [f"{' '.join(argv)}: {stderr.getvalue().strip().splitlines()[-1]}"]
    return []


class _Recorder(Mapping[str, str]):
    """An empty environment that remembers which variables were looked up."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_classes() -> set[tuple[type, str]]:
    """(class, prefix) of every `build(CLS, "prefix", ...)` call in the packages."""
    found: set[tuple[type, str]] = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            calls = [(owner, node) for owner, node in _calls_with_owner(tree, None)
                     if isinstance(node.func, ast.Name) and node.func.id == "build" and len(node.args) >= 2]
            if not calls:
                continue
            module_name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            if not module_name.startswith(PACKAGES):
                continue
            module = importlib.import_module(module_name)
            if getattr(module, "build", None) is not build:
                continue
            for owner, call in calls:
                cls_arg, prefix_arg = call.args[0], call.args[1]
                assert isinstance(cls_arg, ast.Name), f"{rel(path)}:{call.lineno}: build() of {ast.unparse(cls_arg)}"
                name = owner if cls_arg.id == "cls" else cls_arg.id
                prefix = (prefix_arg.value if isinstance(prefix_arg, ast.Constant)
                          else getattr(module, ast.unparse(prefix_arg)))
                assert name is not None and isinstance(prefix, str), f"{rel(path)}:{call.lineno}"
                found.add((getattr(module, name), prefix))
    return found


def _calls_with_owner(node: ast.AST, owner: str | None) -> Iterator[tuple[str | None, ast.Call]]:
    for child in ast.iter_child_nodes(node):
        inner = child.name if isinstance(child, ast.ClassDef) else owner
        if isinstance(child, ast.Call):
            yield owner, child
        yield from _calls_with_owner(child, inner)


def variables_read(cls: type, prefix: str) -> set[str]:
    """The variables `build(cls, prefix)` reads and can turn into a value of the field."""
    recorder = _Recorder()
    with contextlib.suppress(TypeError, ValueError):  # required fields; checks of defaults
        build(cls, prefix, recorder)
    hints = typing.get_type_hints(cls)  # nested settings objects come built, never from a variable
    assert len(recorder.asked) == sum(not dataclasses.is_dataclass(hints[f.name]) for f in dataclasses.fields(cls))
    readable = set()
    for name in recorder.asked:
        try:
            build(cls, prefix, {name: "1"})
        except ValueError as exc:
            if str(exc).startswith(f"{name}="):  # e.g. a nested settings object
                continue
        except TypeError:
            pass
        readable.add(name)
    return readable


def variables_read_by_name() -> set[str]:
    """`PRINTFLEET_*` variables the packages read by their literal name: `<env>.get("NAME")`
    or `<env>["NAME"]` (not a write such as `env["NAME"] = ...`)."""
    found = set()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                key: ast.expr | None = None
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
                    key = node.args[0]
                elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                    key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("PRINTFLEET_"):
                    found.add(key.value)
    return found


@pytest.fixture(scope="module")
def valid_variables() -> set[str]:
    from_build = {name for cls, prefix in settings_classes() for name in variables_read(cls, prefix)}
    return from_build | variables_read_by_name()


# --- the deployment files' side ----------------------------------------------------------


def yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def dockerfile_stages(text: str) -> list[dict[str, Any]]:
    """Stages of a Dockerfile: base image (ARG defaults substituted), name, instructions."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stages.append({"base": base, "name": parts[2] if len(parts) > 2 else None, "lines": []})
        else:
            stages[-1]["lines"].append((word, rest))
    return stages


def invocations(path: Path) -> list[list[str]]:
    """Every `printfleet ...` command line in a deployment file, as its arguments."""
    if path == DOCKERFILE:
        out = []
        for stage in dockerfile_stages(path.read_text()):
            entry = [yaml.safe_load(r) for w, r in stage["lines"] if w == "ENTRYPOINT"]
            for word, rest in stage["lines"]:
                if word == "CMD" and entry == [["printfleet"]]:
                    out.append(yaml.safe_load(rest))
                if word == "RUN":
                    command: list[str] = []
                    for token in [*shlex.split(rest), "&&"]:
                        if token not in ("&&", "||", ";"):
                            command.append(token)
                            continue
                        if command and command[0] == "printfleet":
                            out.append([t for t in command[1:] if not t.startswith(">") and t != "/dev/null"])
                        command = []
        return out
    if path.suffix == ".service":
        out = []
        for line in path.read_text().splitlines():
            if line.startswith("ExecStart"):
                tokens = shlex.split(line.partition("=")[2])
                if Path(tokens[0]).name == "printfleet":
                    out.append(tokens[1:])
        return out
    return [argv for container in containers(path) for argv in [container_argv(container)] if argv is not None]


def containers(path: Path) -> list[dict[str, Any]]:
    """Compose services and Kubernetes containers, each a dict with image/entrypoint/command."""
    found = []
    for doc in yaml_documents(path):
        if path == COMPOSE:
            for service in doc["services"].values():
                found.append({"image": service.get("image"), "entrypoint": service.get("entrypoint"),
                              "command": service.get("command")})
            continue
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            found.append({"image": c.get("image"), "entrypoint": c.get("command"), "command": c.get("args")})
    return found


def container_argv(container: dict[str, Any]) -> list[str] | None:
    """The printfleet arguments a container runs, None when it runs something else."""
    image = str(container["image"])
    entry = container["entrypoint"]
    if entry is None and image.split(":")[0].split("/")[-1] in OUR_IMAGES:
        return list(container["command"] or [])
    if entry and Path(entry[0]).name == "printfleet":
        return [*entry[1:], *(container["command"] or [])]
    return None


def images(path: Path) -> list[str]:
    if path == DOCKERFILE:
        stages = dockerfile_stages(path.read_text())
        names = {s["name"] for s in stages}
        return [s["base"] for s in stages if s["base"] not in names]
    found = [str(c["image"]) for c in containers(path) if c["image"] is not None]
    for doc in yaml_documents(path):
        if doc.get("kind") == "Kustomization":
            found += [f"{i.get('newName', i['name'])}:{i['newTag']}" if "newTag" in i else i["name"]
                      for i in doc.get("images", [])]
    return found


FULL_VERSION = re.compile(r"v?\d+\.\d+\.\d+(\.\d+)*([-.+][A-Za-z0-9.]+)*")


def pin_error(image: str) -> str | None:
    """Why `image` is not pinned; None when it is (a digest, or a full version tag)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return f"{image}: no tag"
    if not FULL_VERSION.fullmatch(tag):
        return f"{image}: tag {tag!r} is not a full version"
    return None


VARIABLE = re.compile(r"\bPRINTFLEET_[A-Z0-9_]*[A-Z0-9]\b")


# --- the checks ----------------------------------------------------------------------------


def test_every_deployment_file_is_there() -> None:
    assert DOCKERFILE.is_file() and COMPOSE.is_file() and SYSTEMD
    assert {p.name for p in K8S} >= {"gateway.yaml", "worker.yaml", "sink.yaml", "configmap.yaml", "kustomization.yaml"}


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_printfleet_command_lines_use_real_subcommands_and_flags(path: Path) -> None:
    parser = build_parser()
    found = invocations(path)
    assert found or path.name in ("configmap.yaml", "kustomization.yaml", "namespace.yaml"), "no printfleet command"
    errors = [e for argv in found for e in flag_errors(argv, parser)]
    assert not errors, "; ".join(errors)


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_printfleet_variables_are_ones_the_code_reads(path: Path, valid_variables: set[str]) -> None:
    named = set(VARIABLE.findall(path.read_text()))
    unknown = sorted(named - valid_variables)
    assert not unknown, f"no settings class reads {', '.join(unknown)}"


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix != ".service"], ids=rel)
def test_every_image_is_pinned(path: Path) -> None:
    found = images(path)
    assert found or path.name in ("configmap.yaml", "namespace.yaml"), "no image found"
    errors = [e for e in map(pin_error, found) if e]
    assert not errors, "; ".join(errors)


def test_the_images_run_printfleet_as_their_own_user() -> None:
    stages = {s["name"]: s for s in dockerfile_stages(DOCKERFILE.read_text())}
    for target in ("cloud", "collector"):
        lines = stages[target]["lines"]
        assert [r for w, r in lines if w == "ENTRYPOINT"] == ['["printfleet"]'], target
        assert [r for w, r in lines if w == "USER"] == ["10001:10001"], target
    assert "printfleet[cloud]" in " ".join(r for _, r in stages["cloud"]["lines"])
    assert "[cloud]" not in " ".join(r for _, r in stages["collector"]["lines"])


def test_the_collector_runs_with_a_fixed_mmap_threshold_wherever_it_is_deployed() -> None:
    # Its printers' TLS read buffers then go back to the system when a connection closes
    # (docs/ingest-bench.md, "Collector memory").
    stages = {s["name"]: s for s in dockerfile_stages(DOCKERFILE.read_text())}
    assert ("ENV", "MALLOC_MMAP_THRESHOLD_=131072") in stages["collector"]["lines"]
    unit = (REPO / "deploy" / "systemd" / "printfleet-collector.service").read_text().splitlines()
    assert "Environment=MALLOC_MMAP_THRESHOLD_=131072" in unit


def test_the_gateway_is_named_after_its_pod() -> None:
    """Its Kafka transactional id, gateway.<instance id>, stays with the pod's stable name."""
    (statefulset,) = [d for d in yaml_documents(REPO / "deploy" / "k8s" / "gateway.yaml") if d["kind"] == "StatefulSet"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PRINTFLEET_GATEWAY_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}



@pytest.mark.parametrize("name", ["gateway", "worker", "sink"])
def test_probes_ask_the_ops_port_never_the_public_one(name: str) -> None:
    """Liveness and readiness on the component's own ops listener (docs/metrics.md), which
    its command line opens on that port to the pod's network."""
    (workload,) = [d for d in yaml_documents(REPO / "deploy" / "k8s" / f"{name}.yaml")
                   if d["kind"] in ("StatefulSet", "Deployment")]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert args[args.index("--ops-port") + 1] == str(ports["ops"])
    assert args[args.index("--ops-host") + 1] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "ops"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(ports["ops"])


def test_passwords_come_from_files_never_from_values() -> None:
    texts = {rel(p): p.read_text() for p in FILES}
    for name, text in texts.items():
        assert not re.search(r"PRINTFLEET_\w*PASSWORD\s*[:=]", text), name
    assert "PRINTFLEET_KAFKA_SASL_PASSWORD_FILE" in texts["deploy/k8s/configmap.yaml"]
    assert "PRINTFLEET_CLICKHOUSE_PASSWORD_FILE" in texts["deploy/compose/compose.yaml"]


# --- the checkers themselves: they refuse what they must ---------------------------------


def test_the_flag_check_refuses_a_misspelt_or_abbreviated_flag_and_a_bad_subcommand() -> None:
    assert flag_errors(["gateway", "--sites-file", "s.toml"]) == []
    assert "unrecognized arguments: --site-file" in " ".join(flag_errors(["gateway", "--site-file", "s.toml"]))
    assert "unrecognized arguments: --kafka-boot" in " ".join(flag_errors(["worker", "--kafka-boot", "k:9092"]))
    assert "invalid choice: 'gatway'" in " ".join(flag_errors(["gatway"]))
    assert flag_errors(["topics", "aply"]) != []
    assert flag_errors(["collector", "start"]) != []  # run or init


def test_the_variable_check_knows_each_commands_prefix(valid_variables: set[str]) -> None:
    assert {"PRINTFLEET_KAFKA_BOOTSTRAP_SERVERS", "PRINTFLEET_GATEWAY_INSTANCE_ID", "PRINTFLEET_WORKER_DATA_DIR",
            "PRINTFLEET_SINK_GROUP_ID", "PRINTFLEET_SIM_PRINTERS", "PRINTFLEET_KAFKA_PORT"} <= valid_variables
    assert "PRINTFLEET_CLICKHOUSE_PASSWORD_FILE" in variables_read_by_name()
    assert "PRINTFLEET_WORKER_STATUS_EVERY_S" not in variables_read_by_name()  # the demo only writes it
    assert "PRINTFLEET_KAFKA_BOOTSTRAP_SERVER" not in valid_variables
    assert "PRINTFLEET_WORKER_KAFKA" not in valid_variables  # a nested settings object


def test_the_pin_check_refuses_latest_bare_and_short_tags() -> None:
    assert pin_error("apache/kafka:4.1.1") is None
    assert pin_error("python:3.11.17-slim-bookworm") is None
    assert pin_error("busybox@sha256:" + "a" * 64) is None
    assert pin_error("apache/kafka:latest") is not None
    assert pin_error("apache/kafka") is not None
    assert pin_error("registry:5000/printfleet") is not None
    assert pin_error("clickhouse/clickhouse-server:26.9") is not None
