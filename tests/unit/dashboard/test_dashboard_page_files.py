"""The dashboard page's files (dashboard/static/): the vendored chart library is the npm
release its VERSION file names, unchanged and with its licence; the page loads nothing
from outside the server, so it works with no internet; an installed printfleet ships it."""

from __future__ import annotations

import hashlib
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "dashboard" / "static"
VENDOR = STATIC / "vendor" / "uplot"
OWN_SCRIPTS = sorted(p for p in STATIC.glob("*.js"))
IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]+?\s+from\s+)?["']([^"']+)["']""", re.M)


class _Links(HTMLParser):
    """Every src and href of a page's tags."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [(tag, value) for name, value in attrs if name in ("src", "href") and value is not None]


def _page_links() -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed((STATIC / "index.html").read_text())
    return parser.links


def test_vendored_uplot_is_the_recorded_npm_release_unchanged() -> None:
    version = tomllib.loads((VENDOR / "VERSION").read_text())
    assert version["name"] == "uplot" and version["license"] == "MIT"
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", version["integrity"]), version["integrity"]
    files = version["files"]
    assert set(files) == {p.name for p in VENDOR.iterdir()} - {"VERSION"}, "a vendored file without a recorded hash, or the reverse"
    for name, meta in files.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == meta["sha256"], f"{name} differs from the npm release"
    # The library's own banner names the same release.
    assert f"(v{version['version']})" in (VENDOR / "uPlot.esm.js").read_text()[:400]


def test_the_licence_travels_with_the_library() -> None:
    licence = (VENDOR / "LICENSE").read_text()
    assert "MIT License" in licence and "Leon Sorokin" in licence


def test_the_page_references_only_its_own_server() -> None:
    links = _page_links()
    assert any(tag == "script" for tag, _ in links)
    for tag, link in links:
        assert link.startswith(("/", "#", "data:")) and not link.startswith("//"), f"<{tag}> loads {link} from outside"
        if link.startswith("/static/"):
            assert (STATIC / link.removeprefix("/static/")).is_file(), f"<{tag}> names {link}, which is not in dashboard/static/"


def test_own_scripts_and_styles_fetch_nothing_from_outside() -> None:
    for path in [*OWN_SCRIPTS, STATIC / "style.css", STATIC / "index.html"]:
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} names an outside URL"
        assert "@import" not in text, path.name


def test_every_module_import_is_a_file_of_the_page() -> None:
    assert (STATIC / "app.js") in OWN_SCRIPTS
    for script in OWN_SCRIPTS:
        for spec in IMPORT.findall(script.read_text()):
            assert spec.startswith("./"), f"{script.name} imports {spec!r}: only the page's own files (no build step)"
            assert (script.parent / spec).resolve().is_file(), f"{script.name} imports {spec}, which does not exist"


def test_the_package_data_ships_every_page_file() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(p.startswith("dashboard") for p in setuptools["packages"]["find"]["include"])
    patterns = setuptools["package-data"]["dashboard"]
    shipped = {p for pattern in patterns for p in (ROOT / "dashboard").glob(pattern) if p.is_file()}
    page = {p for p in STATIC.rglob("*") if p.is_file()}
    assert page and page <= shipped, sorted(str(p.relative_to(STATIC)) for p in page - shipped)
