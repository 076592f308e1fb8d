"""Browser tests: Debian's chromium (through pytest-playwright) drives the real app, started with
`streamlit run` on a sandbox of its own, so nothing else in the test session touches their state."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dashboard.local_sandbox import LocalSandbox, free_port, stop_process
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
DEMO_INTENTS = 60
# The app's own background sync interval here: short, so pages catch up quickly between steps.
REFRESH_SECONDS = 5
VIEWPORT = {"width": 1400, "height": 2200}  # tall, so one screenshot holds a whole page
DOCS = ROOT / "docs"
TIMEOUT_MS = 30_000
CLIENT_SECRET = re.compile(r"pi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+")
expect.set_options(timeout=TIMEOUT_MS)


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
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
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
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log_path)
        yield AppServer(url, sandbox, process, log_path)
    finally:
        stop_process(process, timeout=15)
        sandbox.stop()


# --- steps shared by the browser tests ---------------------------------------------------------------


def visit(page: Page, app: AppServer, path: str, heading: str) -> None:
    page.goto(f"{app.url}/{path}")
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()


def create_test_intent(page: Page, app: AppServer, amount: str, capture: str = "automatic") -> str:
    visit(page, app, "test_lab", "Test lab")
    page.get_by_role("textbox", name="Amount (EUR)").fill(amount)
    page.get_by_role("radiogroup", name="Capture").get_by_text(capture, exact=True).click()
    page.get_by_role("button", name="Create test intent").click()
    created = page.get_by_text(re.compile(r"^Created pi_\w+ for"))
    expect(created).to_be_visible()
    found = re.search(r"pi_\w+", created.inner_text())
    assert found
    return found.group(0)


def open_alma_page(page: Page) -> Page:
    """The link button opens the hosted approve/decline page in a new tab."""
    with page.context.expect_page() as popup:
        # The card of the intent just created comes first; older waiting test intents have links below it.
        page.get_by_role("link", name="Open approve/decline page").first.click()
    alma = popup.value
    expect(alma.get_by_role("button", name="Authorize test payment")).to_be_visible()
    return alma
