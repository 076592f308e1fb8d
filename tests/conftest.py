"""Shared fixtures: the sandbox runs as its own process and is reached over real HTTP, as Stripe would be."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from dashboard.local_sandbox import LocalSandbox, free_port

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc4242"

# One way to start a sandbox everywhere: the tests' handle is the dashboard's own LocalSandbox.
SandboxServer = LocalSandbox

__all__ = ["ROOT", "TEST_KEY", "SandboxServer", "free_port", "start_sandbox", "stop_sandbox"]


def start_sandbox(*args: str, port: int | None = None, timeout: float = 60.0) -> LocalSandbox:
    """`args` are extra command-line options for `python -m dashboard.sandbox`."""
    return LocalSandbox.start(port=port or 0, timeout=timeout, extra_args=args)


def stop_sandbox(server: LocalSandbox) -> None:
    server.stop()


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[LocalSandbox]:
    server = start_sandbox()
    yield server
    stop_sandbox(server)


@pytest.fixture
def sandbox(sandbox_process: LocalSandbox) -> LocalSandbox:
    """A sandbox emptied for this test: no objects, clock offset 0, faults off, stats zero."""
    sandbox_process.reset()
    return sandbox_process
