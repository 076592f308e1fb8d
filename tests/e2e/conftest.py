"""Browser tests: Debian's chromium (through pytest-playwright) drives the real app, started with
`streamlit run` on a sandbox of its own, so nothing else in the test session touches their state."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from dashboard.local_sandbox import LocalSandbox, free_port
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
DEMO_INTENTS = 60
# The app's own background sync interval here: short, so pages catch up quickly between steps.
REFRESH_SECONDS = 5
VIEWPORT = {"width": 1400, "height": 2200}  # tall, so one screenshot holds a whole page
DOCS = ROOT / "docs"


@dataclass
class AppServer:
    url: str
    sandbox: LocalSandbox
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: `make chromium` installs it")
    return {
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": VIEWPORT, "accept_downloads": True, "timezone_id": "Europe/Paris"}


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited ({process.returncode}):\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout:.0f}s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """`streamlit run streamlit_app.py` as `make run` starts it, on a demo-seeded sandbox; its output is kept
    so a test can check that no log line carries a secret."""
    workdir = tmp_path_factory.mktemp("e2e_app")
    sandbox = LocalSandbox.start(seed_demo=DEMO_INTENTS)
    port = free_port()
    url = f"http://localhost:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("STRIPE_", "ALMA_OPS_"))}
    env.update(
        ALMA_OPS_DB=str(workdir / "store.sqlite3"),
        ALMA_OPS_PUBLIC_URL=url,
        ALMA_OPS_SANDBOX_URL=sandbox.base_url,
        ALMA_OPS_REFRESH_SECONDS=str(REFRESH_SECONDS),
    )
    log_path = workdir / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
             "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log_path)
        yield AppServer(url, sandbox, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        sandbox.stop()
