"""Starting and asking the local sandbox process (local mode, tests, benchmarks).

The dashboard reaches the sandbox only over HTTP, exactly as it reaches Stripe; this module is the one place
that knows how to start it and how to call its `/_sandbox/` control endpoints (clock, stats, faults, reset).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from dashboard.settings import AUTH_WINDOW_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SandboxStartError(RuntimeError):
    pass


# Pages read the clock on every run: a hung sandbox should become a message in seconds, not stall a page.
CLOCK_TIMEOUT_SECONDS = 5


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask a server process we started to end (SIGTERM), and kill it if it has not within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


CONTROL_TOKEN_VARIABLE = "SANDBOX_CONTROL_TOKEN"  # noqa: S105 (the variable's name, as dashboard.sandbox reads it)


def free_port(preferred: int = 0) -> int:
    """`preferred` when nothing listens there, else any free port. The dashboard prefers the sandbox's usual
    port so that approve links stored before a restart still lead somewhere."""
    for port in dict.fromkeys((preferred, 0)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


class LocalSandbox:
    """A running sandbox: its address, and the process when this object started it. It is local mode's Clock
    too (`now()`: wall time plus the sandbox's offset), so clock advances show up in the dashboard."""

    def __init__(
        self,
        base_url: str,
        process: subprocess.Popen[bytes] | None = None,
        log: IO[bytes] | None = None,
        control_token: str | None = None,
    ) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"a sandbox is reached over http(s), got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.process = process
        self._log = log
        self._control_token = control_token

    @classmethod
    def start(
        cls,
        *,
        port: int = 0,
        seed_demo: int = 0,
        auth_window_seconds: int = AUTH_WINDOW_SECONDS,
        state_file: Path | None = None,
        timeout: float = 60,
        extra_args: Sequence[str] = (),
        control_token: str | None = None,
    ) -> LocalSandbox:
        """Run `python -m dashboard.sandbox` and wait until /_sandbox/health answers 200. A `control_token`
        goes to the sandbox through its environment, not its command line (which any local user can list)."""
        port = port or free_port()
        args = ["--port", str(port), "--auth-window", str(auth_window_seconds)]
        if seed_demo:
            args += ["--seed-demo", str(seed_demo)]
        if state_file is not None:
            args += ["--state", str(state_file)]
        # A file, not a pipe: a chatty server would block once an unread pipe buffer fills up.
        log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop(), not at the end of this block)
        environment = {**os.environ, CONTROL_TOKEN_VARIABLE: control_token or ""}
        process = subprocess.Popen(  # noqa: S603  (our interpreter and module; the arguments are numbers and paths)
            [sys.executable, "-m", "dashboard.sandbox", *args, *extra_args],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=environment,
        )
        sandbox = cls(f"http://127.0.0.1:{port}", process, log, control_token)
        atexit.register(sandbox.stop)  # a caller that forgets stop() must not leave an orphan server behind
        sandbox._wait_healthy(timeout)
        return sandbox

    @classmethod
    def attach(cls, base_url: str, control_token: str | None = None) -> LocalSandbox:
        """A sandbox someone else started (e.g. ALMA_OPS_SANDBOX_URL); stop() leaves it running. One bound
        beyond loopback answers control requests only with its `--control-token`."""
        return cls(base_url, control_token=control_token)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SandboxStartError(f"sandbox exited with code {self.process.returncode}: {self._log_tail()}")
            try:
                self.control("GET", "/_sandbox/health", timeout=2)
                return
            except (OSError, json.JSONDecodeError):
                time.sleep(0.05)
        self.stop()
        raise SandboxStartError(f"sandbox not healthy after {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        """Ends the process this object started (idempotent); an attached sandbox is left running."""
        atexit.unregister(self.stop)
        if self.process is not None:
            stop_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def control(self, method: str, path: str, *, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """A /_sandbox/ request: POST parameters go as a JSON body, the only kind the sandbox takes."""
        headers = {"Sandbox-Control-Token": self._control_token} if self._control_token else {}
        body = None
        if method == "POST":
            body = json.dumps(params).encode()
            headers["Content-Type"] = "application/json"
        elif params:
            path += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)  # noqa: S310  (scheme checked in __init__)
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  (scheme checked in __init__)
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def now(self) -> int:
        return int(self.control("GET", "/_sandbox/clock", timeout=CLOCK_TIMEOUT_SECONDS)["now"])

    def offset(self) -> int:
        """How many seconds the sandbox's clock runs ahead of real time (it only moves forward)."""
        return int(self.control("GET", "/_sandbox/clock", timeout=CLOCK_TIMEOUT_SECONDS)["offset"])

    def advance(self, seconds: int) -> int:
        return int(
            self.control("POST", "/_sandbox/clock/advance", timeout=CLOCK_TIMEOUT_SECONDS, seconds=seconds)["now"]
        )

    def reset(self, seed_demo: int = 0) -> None:
        self.control("POST", "/_sandbox/reset", seed_demo=seed_demo)

    def stats(self) -> dict[str, int]:
        """/v1 requests served since start (or reset), keyed by "METHOD /route/{template}"."""
        return {route: int(count) for route, count in self.control("GET", "/_sandbox/stats")["requests"].items()}

    def request_count(self) -> int:
        return sum(self.stats().values())

    def faults(
        self, rate: float = 0.0, kinds: str = "429,500,drop", seed: int = 1, script: Sequence[str] = ()
    ) -> dict[str, Any]:
        """`rate` of the requests fail at random (one of `kinds`, drawn from `seed`), after the next
        len(script) requests met the script's fates in order ("429", "500", "drop", or "ok": served)."""
        return self.control("POST", "/_sandbox/faults", rate=rate, kinds=kinds, seed=seed, script=list(script))
