"""Shared fixtures: the sandbox runs as its own process and is reached over real HTTP, as Stripe would be."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc4242"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SandboxServer:
    """Handle on a running sandbox: its address plus the /_sandbox control endpoints."""

    base_url: str
    process: subprocess.Popen[bytes]

    def control(self, method: str, path: str, **form: Any) -> dict[str, Any]:
        body = urllib.parse.urlencode(form).encode() if method == "POST" else None
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self, seed_demo: int = 0) -> None:
        self.control("POST", "/_sandbox/reset", seed_demo=seed_demo)

    def now(self) -> int:
        return int(self.control("GET", "/_sandbox/clock")["now"])

    def advance(self, seconds: int) -> int:
        return int(self.control("POST", "/_sandbox/clock/advance", seconds=seconds)["now"])

    def stats(self) -> dict[str, int]:
        return self.control("GET", "/_sandbox/stats")["requests"]

    def request_count(self) -> int:
        return sum(self.stats().values())

    def faults(self, rate: float, kinds: str = "429,500,drop", seed: int = 1) -> dict[str, Any]:
        return self.control("POST", "/_sandbox/faults", rate=rate, kinds=kinds, seed=seed)


def start_sandbox(*args: str, port: int | None = None, timeout: float = 60.0) -> SandboxServer:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.sandbox", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = SandboxServer(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            server.control("GET", "/_sandbox/health")
            return server
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("sandbox did not become healthy")


def stop_sandbox(server: SandboxServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxServer]:
    server = start_sandbox()
    yield server
    stop_sandbox(server)


@pytest.fixture
def sandbox(sandbox_process: SandboxServer) -> SandboxServer:
    """A sandbox emptied for this test: no objects, clock offset 0, faults off, stats zero."""
    sandbox_process.reset()
    return sandbox_process
