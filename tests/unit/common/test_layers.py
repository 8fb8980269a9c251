"""Data flows one way, and no runtime package imports the CLI (printfleet/) or the
benchmarks: each package imports only the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
OURS = {"common", "schemas", "producers", "streams", "sinks", "deploy", "printfleet", "benchmarks", "dashboard"}
ALLOWED = {
    "common": {"common", "schemas.kinds"},
    "schemas": {"schemas", "common"},
    "producers": {"producers", "schemas", "common"},
    "streams": {"streams", "schemas", "common"},
    "sinks": {"sinks", "schemas", "common"},
    "deploy": {"deploy", "common"},
    "dashboard": {"dashboard", "sinks", "schemas", "common"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in OURS}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_is_below_it(package: str) -> None:
    allowed = ALLOWED[package]
    wrong = sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in (REPO / package).rglob("*.py")
        for name in _imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    )
    assert wrong == []
