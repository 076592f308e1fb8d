"""Shared fixtures: the sandbox runs as its own process and is reached over real HTTP, as Stripe would be."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import pytest
import sqlalchemy as sa

from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox, free_port
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.store import IntentStore, parse_location
from tests.json_receiver import JsonReceiver
from tests.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc4242"

# One way to start a sandbox everywhere: the tests' handle is the dashboard's own LocalSandbox.
SandboxServer = LocalSandbox

__all__ = ["ROOT", "TEST_KEY", "SandboxServer", "free_port", "start_sandbox", "stop_sandbox", "answer_alma_page"]
DATABASES = ("sqlite", "postgresql")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright leaves an event loop running on the main thread, which would make
    every later asyncio.run() fail."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)  # stable: order kept otherwise


def start_sandbox(*args: str, port: int | None = None, timeout: float = 60.0) -> LocalSandbox:
    """`args` are extra command-line options for `python -m dashboard.sandbox`."""
    return LocalSandbox.start(port=port or 0, timeout=timeout, extra_args=args)


def stop_sandbox(server: LocalSandbox) -> None:
    server.stop()


class _FormFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form" and self.action is None:
            self.action = dict(attrs).get("action")


def _http(method: str, url: str, body: str | None = None) -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
    return connection.getresponse()


def answer_alma_page(redirect_url: str, decision: Literal["authorize", "fail"], installments: int = 3) -> str:
    """Act as the customer on the hosted Alma page: load it, submit its form over HTTP, and return the
    redirect Location without following it (the return page is the dashboard's, not under test here)."""
    page = _http("GET", redirect_url)
    assert page.status == 200, page.status
    finder = _FormFinder()
    finder.feed(page.read().decode())
    assert finder.action, "the hosted page has no form"
    answer = _http(
        "POST",
        urllib.parse.urljoin(redirect_url, finder.action),
        urllib.parse.urlencode({"decision": decision, "installments": installments}),
    )
    assert answer.status == 303, answer.status
    return answer.headers["Location"]


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


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    """A local endpoint for apprise's json:// URLs that records what it receives."""
    receiver = JsonReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL for the session. Without PostgreSQL installed this errors: the PostgreSQL
    tests fail, they are never skipped (`make test` installs it)."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """ALMA_OPS_DB for a fresh, empty store: a SQLite file path, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "alma.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


def execute(database: str, *statements: str) -> None:
    """Raw SQL on a store's database, behind the store's back (a downgrade, damage, an old file)."""
    engine = sa.create_engine(parse_location(database).url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.fixture
def store(database: str) -> Iterator[IntentStore]:
    """Every test that takes `store` runs on SQLite and on PostgreSQL."""
    opened = IntentStore(database, AUTH_WINDOW_SECONDS)
    yield opened
    opened.close()


@pytest.fixture
def gateway(sandbox: LocalSandbox) -> StripeGateway:
    """A test-mode gateway on the emptied sandbox."""
    return StripeGateway(Settings(), api_base=sandbox.base_url)
