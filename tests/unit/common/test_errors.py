"""Every exception class of the packages is under `PrintfleetError` and says `retriable`.

Imports every module of common, schemas, producers, streams, sinks and deploy (a module
that does not import fails the test), and checks each public exception class defined in
them against the tree drawn in common/errors.py.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from types import ModuleType

from common.errors import PrintfleetError
from dashboard.errors import DashboardError
from deploy.errors import StackError
from producers.errors import ProducerError
from schemas.errors import SchemaError
from sinks.errors import SinkError
from streams.errors import StreamsError

PACKAGES = ("common", "schemas", "producers", "streams", "sinks", "deploy", "dashboard")

# Exception classes that are module-internal control flow, not errors a caller sees.
NOT_ERRORS = {
    # The columnar fast paths raise it for a batch they do not vouch for; its only
    # catchers (schemas.codec.decode_records, sinks.native_block.NativeDecode.build) then
    # take the record-by-record path, where a bad message gets its real SchemaError.
    "schemas.columns.Refused",
}

PACKAGE_ROOTS = (SchemaError, ProducerError, StreamsError, SinkError, StackError, DashboardError)


@functools.cache
def _modules() -> tuple[tuple[ModuleType, ...], tuple[str, ...]]:
    """Every module of PACKAGES, and 'name: error' for each that failed to import."""
    modules: list[ModuleType] = []
    failed: list[str] = []

    def walk_failed(name: str) -> None:  # a subpackage that walk_packages could not import
        failed.append(f"{name}: cannot be imported to list its modules")

    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, package_name + ".", onerror=walk_failed):
            try:
                modules.append(importlib.import_module(info.name))
            except Exception as exc:
                failed.append(f"{info.name}: {exc!r}")
    return tuple(modules), tuple(failed)


def _defined_exceptions() -> list[type[Exception]]:
    """The public Exception subclasses defined (not just imported) in the modules."""
    modules, _ = _modules()
    found: dict[str, type[Exception]] = {}
    for module in modules:
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return [cls for qualname, cls in sorted(found.items()) if qualname not in NOT_ERRORS]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_module_imports() -> None:
    modules, failed = _modules()
    assert not failed, "modules that do not import:\n" + "\n".join(failed)
    names = {m.__name__ for m in modules}
    assert {"common.errors", "producers.spool.frames", "sinks.native_block"} <= names


def test_every_exception_is_a_printfleet_error_with_a_bool_retriable() -> None:
    errors = _defined_exceptions()
    assert len(errors) > 50  # the walk found the packages' errors, not nothing
    outside = [_qualname(c) for c in errors if not issubclass(c, PrintfleetError)]
    assert not outside, "not under PrintfleetError (see common/errors.py):\n" + "\n".join(outside)
    no_flag = [_qualname(c) for c in errors if not isinstance(getattr(c, "retriable", None), bool)]
    assert not no_flag, "without a bool `retriable`:\n" + "\n".join(no_flag)


def test_the_allow_list_names_only_internal_non_printfleet_exceptions() -> None:
    modules, _ = _modules()
    by_name = {m.__name__: m for m in modules}
    for qualname in NOT_ERRORS:
        module_name, _, name = qualname.rpartition(".")
        cls = getattr(by_name[module_name], name)
        assert issubclass(cls, Exception) and not issubclass(cls, PrintfleetError), qualname


def test_each_package_root_is_directly_under_printfleet_error() -> None:
    for root in PACKAGE_ROOTS:
        assert root.__bases__ == (PrintfleetError,), _qualname(root)
        assert root.retriable is False


def test_the_root_is_not_retriable() -> None:
    assert PrintfleetError.__bases__ == (Exception,)
    assert PrintfleetError.retriable is False
