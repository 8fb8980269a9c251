"""The compiled hot path (printfleet/compiled.py): served only while it matches its source."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from printfleet import compiled


def _write(root: Path, body: str) -> None:
    (root / "cpkg").mkdir(exist_ok=True)
    (root / "cpkg" / "__init__.py").write_text("")
    (root / "cpkg" / "mod.py").write_text(body)


def _import_fresh(monkeypatch: pytest.MonkeyPatch, finder: compiled.CompiledFinder) -> ModuleType:
    for name in ("cpkg", "cpkg.mod"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    importlib.invalidate_caches()
    return importlib.import_module("cpkg.mod")


def test_a_module_runs_compiled_while_its_source_matches_and_as_python_once_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, built = tmp_path / "src", tmp_path / "built"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    _write(root, "def answer() -> int:\n    return 41 + 1\n")
    assert compiled.outdated(["cpkg.mod"], built, root) == ["cpkg.mod"]

    compiled.build(["cpkg.mod"], built, root, jobs=1)

    assert compiled.outdated(["cpkg.mod"], built, root) == []
    finder = compiled.CompiledFinder(built, ["cpkg.mod"], root)
    module = _import_fresh(monkeypatch, finder)
    assert compiled.is_compiled(module)
    assert module.answer() == 42

    _write(root, "def answer() -> int:\n    return 7\n")  # edited after the build

    assert compiled.outdated(["cpkg.mod"], built, root) == ["cpkg.mod"]
    module = _import_fresh(monkeypatch, finder)
    assert not compiled.is_compiled(module)
    assert module.answer() == 7

    compiled.prune(["cpkg.mod"], built, root)
    assert list(built.iterdir()) == []  # the stale extension is gone


def test_a_failed_build_says_how_to_run_without_it(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    _write(root, "def broken(:\n")
    with pytest.raises(compiled.BuildError, match="PRINTFLEET_COMPILED=0"):
        compiled.build(["cpkg.mod"], tmp_path / "built", root, jobs=1)


def test_the_finder_leaves_other_modules_to_the_normal_import(tmp_path: Path) -> None:
    finder = compiled.CompiledFinder(tmp_path, ["cpkg.mod"], tmp_path)
    assert finder.find_spec("json", None) is None
    assert finder.find_spec("cpkg.mod", None) is None  # no source there at all


def test_these_tests_run_the_hot_path_as_the_mode_says() -> None:
    """`make test` bootstraps, which compiles the hot path: every module of it must then
    be the compiled one here (and in the workers the tests start, which install the same
    finder); with PRINTFLEET_COMPILED=0, none of them."""
    modules = [importlib.import_module(name) for name in compiled.HOT_PATH]
    if compiled.enabled():
        assert compiled.outdated() == [], "the compiled hot path is stale: run `make bootstrap`"
        assert [m.__name__ for m in modules if not compiled.is_compiled(m)] == []
        assert compiled.describe() == f"hot path compiled ({len(compiled.HOT_PATH)} of {len(compiled.HOT_PATH)} modules)"
    else:
        assert [m.__name__ for m in modules if compiled.is_compiled(m)] == []
        assert compiled.describe() == "hot path as Python (PRINTFLEET_COMPILED=0)"
