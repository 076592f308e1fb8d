"""Browser tests: Debian's chromium (through pytest-playwright) drives the real app, started with
`streamlit run` on a sandbox of its own, so nothing else in the test session touches their state."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from dashboard.local_sandbox import LocalSandbox, free_port, stop_process
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
DEMO_INTENTS = 60
# The app's own background sync interval here: short, so pages catch up quickly between steps.
REFRESH_SECONDS = 5
VIEWPORT = {"width": 1400, "height": 2400}  # tall, so one screenshot holds a whole page
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


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 90, path: str = "/_stcore/health"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited ({process.returncode}):\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f}s:\n{log_path.read_text(errors='replace')}")


@contextmanager
def running_app(workdir: Path, *args: str) -> Iterator[AppServer]:
    """`streamlit run streamlit_app.py` as `make run` starts it, on a demo-seeded sandbox, with extra
    command-line `args`; its output is kept so a test can check that no log line carries a secret."""
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
                *args,
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


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app without sign-in: everyone is the anonymous admin of local mode."""
    with running_app(tmp_path_factory.mktemp("e2e_app")) as app:
        yield app


# --- sign-in: a local OpenID Connect provider and the app configured to use it ----------------------------

# The people the provider knows (--user-claims), by the role [roles] below gives them; "nobody" has none.
PEOPLE: dict[str, dict[str, Any]] = {
    "viewer": {"sub": "tom", "email": "tom@example.com", "email_verified": True, "name": "Tom Viewer"},
    "operator": {"sub": "olga", "email": "olga@partner.org", "name": "Olga Ops", "groups": ["alma-ops"]},
    "admin": {"sub": "lea", "email": "lea@example.com", "name": "Léa Admin"},
    "nobody": {"sub": "eve", "email": "eve@elsewhere.org", "name": "Eve Nobody"},
}
# The mock accepts any client id and secret; the cookie secret signs Streamlit's identity cookie.
SIGN_IN_SECRETS = """
[auth]
redirect_uri = "http://localhost:{{port}}/oauth2callback"
cookie_secret = "e2e-cookie-secret-0123456789abcdef"
client_id = "alma-ops-e2e"
client_secret = "e2e-client-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[roles.admin]
emails = ["lea@example.com"]
[roles.operator]
groups = ["alma-ops"]
[roles.viewer]
domains = ["example.com"]
"""


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """oidc-provider-mock on a free loopback port, knowing PEOPLE; yields its issuer URL."""
    workdir = tmp_path_factory.mktemp("oidc")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    users = [arg for claims in PEOPLE.values() for arg in ("--user-claims", json.dumps(claims))]
    log_path = workdir / "oidc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port), *users],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log_path, path="/.well-known/openid-configuration")
        yield url
    finally:
        stop_process(process, timeout=15)


@pytest.fixture(scope="session")
def signed_in_app_server(tmp_path_factory: pytest.TempPathFactory, oidc_provider: str) -> Iterator[AppServer]:
    """The app with [auth] and [roles] pointing at the local provider. The secrets file is the app's only one
    (secrets.files), so a developer's own .streamlit/secrets.toml plays no part."""
    workdir = tmp_path_factory.mktemp("e2e_signed_in_app")
    secrets = workdir / "secrets.toml"
    secrets.write_text(SIGN_IN_SECRETS.format(provider=oidc_provider))
    with running_app(workdir, "--secrets.files", str(secrets)) as app:
        yield app


def sign_in(page: Page, app: AppServer, person: str) -> None:
    """Log in as one of PEOPLE through the provider's page: type the subject, press Authorize."""
    page.goto(app.url)
    page.get_by_role("button", name="Log in").click()
    page.get_by_placeholder("sub").fill(PEOPLE[person]["sub"])
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(re.escape(app.url)))


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


def downloaded_text(page: Page, button: str) -> str:
    """Click a download button and read the file. A rerun that redraws the button while the file is being
    built cancels that download (the browser's doing, not the app's): then a second click, as a person would."""
    try:
        return _download(page, button)
    except PlaywrightError as error:
        if "canceled" not in str(error):
            raise
        return _download(page, button)


def _download(page: Page, button: str) -> str:
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    return Path(download.value.path()).read_text()
