"""AppTest fixtures: the whole app (streamlit_app.py) against the sandbox over HTTP, a fresh store per test.

Nothing is mocked: the app starts as `streamlit run` would, in local mode attached to the session's sandbox
(ALMA_OPS_SANDBOX_URL), or in test/live mode pointed at it (STRIPE_API_BASE)."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import streamlit as st
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dashboard.domain import AlmaIntent
from dashboard.gateway import (
    CaptureMethod,
    CreatedIntent,
    CreateIntentRequest,
    StripeGateway,
    submission_idempotency_key,
)
from dashboard.settings import AUTH_WINDOW_SECONDS, load_settings
from dashboard.store import IntentStore
from tests.conftest import ROOT, SandboxServer, answer_alma_page

APP_TIMEOUT = 60
PUBLIC_URL = "http://localhost:8501"


def clear_app_caches() -> None:
    """The app's services (sync thread included, via on_release) and cached frames belong to one test."""
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """Local mode on the shared sandbox, a store of its own; no STRIPE_/ALMA_OPS_ variable leaks in or out."""
    for name in [n for n in os.environ if n.startswith(("STRIPE_", "ALMA_OPS_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ALMA_OPS_DB", str(tmp_path / "store.sqlite3"))
    monkeypatch.setenv("ALMA_OPS_SANDBOX_URL", sandbox.base_url)
    monkeypatch.setenv("ALMA_OPS_PUBLIC_URL", PUBLIC_URL)
    clear_app_caches()
    yield sandbox
    clear_app_caches()


def open_app(page: str | None = None, **query: str) -> AppTest:
    """Run the entry script, then switch to `page` (a path like "app_pages/intents.py") with `query`."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page)
        at.query_params.update(query)
        at.run()
        assert not at.exception, at.exception
    return at


@pytest.fixture
def store(app_env: SandboxServer) -> IntentStore:
    """A reader on the app's own store file."""
    return IntentStore(Path(os.environ["ALMA_OPS_DB"]), AUTH_WINDOW_SECONDS)


@pytest.fixture
def gateway(app_env: SandboxServer) -> StripeGateway:
    """What a tester's other tools would use: the same gateway class, on the same sandbox."""
    return StripeGateway(load_settings(os.environ), api_base=app_env.base_url)


def create_intent(
    gateway: StripeGateway,
    amount: int,
    capture_method: CaptureMethod = "automatic",
    description: str | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> CreatedIntent:
    request = CreateIntentRequest(
        amount=amount,
        capture_method=capture_method,
        description=description,
        metadata=metadata,
        return_url=PUBLIC_URL + "/return",
    )
    key = submission_idempotency_key("test-setup", os.urandom(8).hex())
    return gateway.create_alma_intent(request, key)


def sandbox_intents(gateway: StripeGateway) -> list[AlmaIntent]:
    """Every intent the sandbox holds, as the gateway reads them (what a write changed, or did not)."""
    return [intent for page in gateway.list_intents(0) for intent in page]


# --- the sandbox's hosted Alma page, driven without a browser ------------------------------------------


# The hosted page's buttons, by the label a tester reads on them.
HOSTED_DECISIONS: dict[str, Literal["authorize", "fail"]] = {
    "Authorize test payment": "authorize",
    "Fail test payment": "fail",
}


def press_hosted_button(redirect_url: str, label: str) -> str:
    """Press the hosted page's button that reads `label`; return where the sandbox redirects (the
    return_url with payment_intent, payment_intent_client_secret and redirect_status)."""
    return answer_alma_page(redirect_url, HOSTED_DECISIONS[label])


def return_query(location: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


@dataclass(frozen=True)
class Download:
    build: Callable[[], bytes]
    file_name: str


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[Download]:
    """Download buttons build their file only on click (deferred), which AppTest cannot do: record each builder
    and file name as the page hands them to Streamlit, so a test can run the builder itself."""
    recorded: list[Download] = []
    original = MediaFileManager.add_deferred

    def recording(self: MediaFileManager, data_callable: Callable[[], bytes], *args: Any, **kwargs: Any) -> str:
        recorded.append(Download(data_callable, str(kwargs.get("file_name") or args)))
        return original(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)
    return recorded
