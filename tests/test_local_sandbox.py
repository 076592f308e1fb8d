"""The local sandbox handle: one way to start, ask and stop the sandbox process."""

from __future__ import annotations

import socket

import pytest

from dashboard import local_sandbox
from dashboard.clock import Clock
from dashboard.local_sandbox import LocalSandbox, free_port
from tests.conftest import SandboxServer


def test_the_clock_is_the_sandbox_clock(sandbox: SandboxServer) -> None:
    clock: Clock = LocalSandbox.attach(sandbox.base_url)
    before = clock.now()
    sandbox.advance(3_600)
    assert clock.now() >= before + 3_600


def test_a_hung_sandbox_is_an_error_within_the_clock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setattr(local_sandbox, "CLOCK_TIMEOUT_SECONDS", 0.2)
        clock: Clock = LocalSandbox.attach(f"http://127.0.0.1:{silent.getsockname()[1]}")
        with pytest.raises(TimeoutError):
            clock.now()


def test_the_usual_port_is_taken_when_free_and_another_one_otherwise() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert free_port(busy) != busy
    assert free_port(busy) == busy  # released: the preferred port again
