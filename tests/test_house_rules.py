"""Rules of the house checked over every Python file in the repository (none picked by hand): where streamlit,
stripe and the wall clock may appear, that the sandbox stays a separate program, and that no page calls the
gateway or shows a Material icon (its font comes from the internet, which the dashboard's network may lack)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

SOURCES = sorted(
    path
    for path in ROOT.rglob("*.py")
    if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)  # .venv, benchmarks/.venv-*
)
MATERIAL_ICON = ":" + "material/"  # spelled apart, so this file does not hold it


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def importing(module: str) -> list[str]:
    pattern = re.compile(rf"^\s*(import|from)\s+{re.escape(module)}\b", re.MULTILINE)
    return [relative(path) for path in SOURCES if pattern.search(path.read_text())]


def test_the_check_sees_the_whole_tree() -> None:
    names = {relative(path) for path in SOURCES}
    assert {"streamlit_app.py", "dashboard/gateway.py", "dashboard/sandbox/app.py", "tests/conftest.py"} <= names
    assert len(names) > 80 and not any("site-packages" in name for name in names)


def test_streamlit_only_in_the_entry_script_the_pages_and_the_ui_glue() -> None:
    allowed = re.compile(r"^(streamlit_app\.py|app_pages/.*|dashboard/ui[a-z_]*\.py|tests/.*|benchmarks/.*)$")
    assert [name for name in importing("streamlit") if not allowed.match(name)] == []


def test_stripe_only_in_the_gateway() -> None:
    allowed = re.compile(r"^(dashboard/gateway\.py|tests/.*|benchmarks/.*)$")
    assert [name for name in importing("stripe") if not allowed.match(name)] == []


def test_the_sandbox_imports_nothing_else_from_the_dashboard() -> None:
    other = re.compile(r"^\s*(from|import)\s+dashboard\.(?!sandbox\b)", re.MULTILINE)
    assert [
        relative(p) for p in SOURCES if relative(p).startswith("dashboard/sandbox/") and other.search(p.read_text())
    ] == []


def test_no_wall_clock_below_the_ui_but_the_clock() -> None:
    wall_clock = re.compile(r"\btime\.time\(|\bdatetime\.now\(|\bdate\.today\(|\butcnow\(")
    core = [p for p in SOURCES if re.match(r"dashboard/(?!ui|sandbox/|clock\.py)", relative(p))]
    assert core and [relative(p) for p in core if wall_clock.search(p.read_text())] == []


def test_pages_never_call_the_gateway() -> None:
    pages = [p for p in SOURCES if relative(p).startswith("app_pages/") or relative(p) == "streamlit_app.py"]
    assert pages and [relative(p) for p in pages if re.search(r"\.gateway\.\w+\(", p.read_text())] == []


def test_no_material_icons() -> None:
    assert [relative(path) for path in SOURCES if MATERIAL_ICON in path.read_text()] == []
