"""The hash lock (requirements-lock.txt, made by `make lock`) agrees with what requirements*.txt ask for, and
pins every package with hashes, so `pip install --require-hashes` (the Makefile's) takes it as it is."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: how pip compares names


def pins(path: Path) -> dict[str, str]:
    return {_name(name): version for name, version in _PIN.findall(path.read_text())}


def locked_entries() -> list[str]:
    """The lock's requirement entries: a pin line and its indented `--hash` and `# via` lines."""
    return re.findall(r"^[A-Za-z0-9][^\n]*(?:\n[ \t]+[^\n]*)*", LOCK.read_text(), re.MULTILINE)


def test_every_pin_of_the_requirements_is_locked_at_the_same_version() -> None:
    asked = {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-dev.txt")}
    locked = pins(LOCK)
    differ = {name: (version, locked.get(name)) for name, version in asked.items() if locked.get(name) != version}
    assert not differ, f"requirements*.txt and {LOCK.name} disagree (asked, locked): {differ}; run `make lock`."


def test_every_locked_package_carries_hashes() -> None:
    entries = locked_entries()
    assert len(entries) == len(pins(LOCK)) > 10
    unhashed = [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry]
    assert not unhashed
