"""The stream worker's hot path, compiled with Cython, loaded only while it matches its source.

A heartbeat runs about 150 lines of Python across the worker's state modules; what is
left of its cost is the interpreter's, line by line (docs/streams-bench.md). Cython compiles
those modules unchanged (plain Python, no annotations read as C types) to extension
modules that take about a fifth less time (the worker as a whole: 1.14 times the
heartbeats a second): the idea Faust and aiokafka use for their own hot paths, with the
same pure-Python fallback.

The `.py` files stay the source of truth. `build` writes each module's extension under
`.build/compiled/`, named by a digest of its source; `install` puts a finder first on
`sys.meta_path` that loads a module's extension only when one of that digest exists. An
edited module therefore runs as Python until the next build, never as a stale binary
(the trap of extensions built beside their sources, which Python imports in preference).

    python -m printfleet.compiled build     # bootstrap.sh; rebuilds what changed
    PRINTFLEET_COMPILED=0                   # run everything as Python (and build nothing)
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# What a heartbeat or an event runs through in the worker, from decoding to the outputs.
HOT_PATH: tuple[str, ...] = (
    "schemas.codec",
    "schemas.columns",
    "streams.alert_device",
    "streams.alert_rules",
    "streams.alerts",
    "streams.device",
    "streams.device_agent",
    "streams.errors",
    "streams.eta",
    "streams.fleet_state",
    "streams.heartbeat",
    "streams.ids",
    "streams.maintenance",
    "streams.output_producer",
    "streams.partition_book",
    "streams.plain",
    "streams.telemetry_reader",
    "streams.timeline",
    "streams.utilisation",
    "streams.words",
)

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / ".build" / "compiled"
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # this interpreter's ABI, e.g. .cpython-311-x86_64-linux-gnu.so


class BuildError(RuntimeError):
    """Cython or the C compiler failed; the message says how to run without them."""


def enabled() -> bool:
    """False when PRINTFLEET_COMPILED=0: then nothing is built or loaded."""
    return os.environ.get("PRINTFLEET_COMPILED", "1") != "0"


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def artifact_name(module: str, source: bytes) -> str:
    return f"{module}.{hashlib.blake2b(source, digest_size=10).hexdigest()}{SUFFIX}"


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds `modules` in `built` when an extension of their current source is there;
    otherwise leaves them to the normal import (as Python)."""

    def __init__(self, built: Path, modules: Sequence[str], root: Path = ROOT) -> None:
        self.built, self.modules, self.root = built, frozenset(modules), root

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.modules:
            return None
        source = source_of(fullname, self.root)
        try:
            artifact = self.built / artifact_name(fullname, source.read_bytes())
        except OSError:
            return None
        if not artifact.is_file():
            log.warning("%s: its source changed since the compiled build; it runs as Python "
                        "(`make bootstrap` compiles it again)", fullname)
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(artifact))
        return importlib.util.spec_from_file_location(fullname, artifact, loader=loader)


def install(built: Path = BUILT) -> None:
    """Serve the hot path compiled from `built`, if enabled and built (`describe` says
    which). Call it before any of HOT_PATH is imported (the CLI's first line; the tests'
    plugin below). Idempotent."""
    if enabled() and built.is_dir() and not any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CompiledFinder(built, HOT_PATH))


def is_compiled(module: ModuleType) -> bool:
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def describe(built: Path = BUILT) -> str:
    """How a process that called `install` runs the hot path, for the worker's and the
    bench's first lines."""
    if not enabled():
        return "hot path as Python (PRINTFLEET_COMPILED=0)"
    served = len(HOT_PATH) - len(outdated(built=built)) if built.is_dir() else 0
    if served == 0:
        return "hot path as Python (not compiled: `make bootstrap` compiles it)"
    return f"hot path compiled ({served} of {len(HOT_PATH)} modules)"


def outdated(modules: Sequence[str] = HOT_PATH, built: Path = BUILT, root: Path = ROOT) -> list[str]:
    """The modules whose current source has no extension in `built`."""
    return [m for m in modules if not (built / artifact_name(m, source_of(m, root).read_bytes())).is_file()]


def prune(modules: Sequence[str] = HOT_PATH, built: Path = BUILT, root: Path = ROOT) -> None:
    """Remove the extensions that no current source of `modules` matches."""
    current = {artifact_name(m, source_of(m, root).read_bytes()) for m in modules}
    for old in built.glob(f"*{SUFFIX}"):
        if old.name not in current:
            old.unlink()


def build(modules: Sequence[str], built: Path = BUILT, root: Path = ROOT, jobs: int = 2) -> None:
    """Compile `modules` into `built`, each named by the source it was made from.
    Raises BuildError."""
    built.mkdir(parents=True, exist_ok=True)
    if not modules:
        return
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
        from setuptools.dist import Distribution
    except ImportError as exc:
        raise BuildError(f"Cython and setuptools are needed to compile the hot path ({exc}); "
                         "bootstrap installs them, or set PRINTFLEET_COMPILED=0 to run it as Python") from exc
    # Named by the source as read now: one edited during the build is compiled next time.
    names = {m: artifact_name(m, source_of(m, root).read_bytes()) for m in modules}
    # Built beside its destination, so the move into place is a rename.
    with tempfile.TemporaryDirectory(prefix=".build-", dir=built) as tmp:
        work = Path(tmp)
        # annotation_typing off: annotations stay hints, so the compiled code does what the
        # Python does (read as C types, they would change what some functions accept).
        try:
            extensions = cythonize(  # type: ignore[no-untyped-call]
                [Extension(m, [str(source_of(m, root))]) for m in modules],
                build_dir=str(work / "c"), language_level=3, quiet=True,
                compiler_directives={"annotation_typing": False, "binding": True},
            )
            dist = Distribution({"ext_modules": extensions, "script_name": "compiled",
                                 "script_args": ["build_ext", "--build-lib", str(work / "lib"),
                                                 "--build-temp", str(work / "tmp"), "-j", str(jobs)]})
            dist.parse_command_line()
            dist.run_commands()
        except (Exception, SystemExit) as exc:  # setuptools reports compiler errors as SystemExit
            raise BuildError(f"compiling the hot path failed: {exc}; it needs a C compiler and "
                             "Python's headers, or set PRINTFLEET_COMPILED=0 to run it as Python") from exc
        for m in modules:
            package, name = m.rsplit(".", 1)
            made = work / "lib" / package.replace(".", "/") / f"{name}{SUFFIX}"
            made.replace(built / names[m])


def pytest_configure(config: object) -> None:
    """As a pytest plugin (`-p printfleet.compiled` in pyproject.toml), before any test
    module is imported: the tests run the hot path as the worker does."""
    install()


def main(argv: Sequence[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m printfleet.compiled build", file=sys.stderr)
        return 2
    if not enabled():
        print("compiled: PRINTFLEET_COMPILED=0, the hot path runs as Python")
        return 0
    todo = outdated()
    if todo:
        print(f"compiled: compiling {len(todo)} of {len(HOT_PATH)} hot-path modules with Cython "
              "(a few seconds each)", flush=True)
    started = time.monotonic()
    try:
        build(todo)
        prune()
    except BuildError as exc:
        print(f"compiled: {exc}", file=sys.stderr)
        return 1
    if todo:
        print(f"compiled: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
