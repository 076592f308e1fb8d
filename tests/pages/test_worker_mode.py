"""ALMA_OPS_SYNC=worker: the dashboard only reads what `python -m dashboard.sync` wrote, on SQLite and
PostgreSQL; it never syncs, never writes the store and never calls the Stripe API while pages render."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import sync
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import IntentStore
from tests.conftest import ROOT, SandboxServer
from tests.pages.conftest import APP_TIMEOUT, create_intent, open_app

DAY = 86_400
READING_PAGES = ("app_pages/overview.py", "app_pages/intents.py", "app_pages/expiry_watch.py", "app_pages/lab.py")


def _sidebar_text(at: object) -> str:
    return " ".join(c.value for c in at.sidebar.caption)  # type: ignore[attr-defined]


@pytest.fixture
def worker_env(app_env: SandboxServer, database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALMA_OPS_DB", database)
    monkeypatch.setenv("ALMA_OPS_SYNC", "worker")
    return database


def test_worker_mode_pages_draw_from_the_store_without_calling_stripe(
    worker_env: str, app_env: SandboxServer, gateway: object
) -> None:
    created = {create_intent(gateway, amount).intent.id for amount in (12_000, 34_500, 250_000)}  # type: ignore[arg-type]
    assert sync.main(["--once"]) == 0  # the worker's first sync
    reader = IntentStore(worker_env, AUTH_WINDOW_SECONDS)
    version, status = reader.version(), reader.writer_status()
    requests_before = app_env.request_count()

    at = open_app()
    sidebar = _sidebar_text(at)
    assert "Syncing: a worker" in sidebar and "Last sync: never" not in sidebar
    assert not [b for b in at.sidebar.button if b.label == "Sync now"]
    for page in READING_PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, at.exception)
        if page == "app_pages/intents.py":
            assert created <= set(at.dataframe[0].value["id"])

    assert app_env.request_count() == requests_before  # not one Stripe call for syncing or drawing
    assert (reader.version(), reader.writer_status()) == (version, status)  # nothing written by the dashboard
    reader.close()


def test_worker_mode_notices_the_worker_s_next_sync(worker_env: str, app_env: SandboxServer, gateway: object) -> None:
    assert sync.main(["--once"]) == 0
    at = open_app("app_pages/intents.py")
    assert at.dataframe[0].value.empty
    newcomer = create_intent(gateway, 15_000)  # type: ignore[arg-type]
    assert sync.main(["--once"]) == 0  # the worker, not this process, brings it in
    at.run()
    assert newcomer.intent.id in set(at.dataframe[0].value["id"])


def test_worker_mode_sidebar_tells_of_a_lost_cursor_and_quarantined_rows(
    worker_env: str, app_env: SandboxServer, gateway: object
) -> None:
    create_intent(gateway, 20_000)  # type: ignore[arg-type]
    assert sync.main(["--once"]) == 0
    at = open_app()
    assert not at.sidebar.warning

    app_env.reset()  # a sandbox restarted without its state file: the worker's cursor event is gone
    app_env.advance(5 * DAY)
    create_intent(gateway, 30_000)  # type: ignore[arg-type]
    assert sync.main(["--once"]) == 0
    at.run()
    assert any("relisted the lookback window" in w.value for w in at.sidebar.warning)


def test_worker_mode_before_the_worker_s_first_sync_says_so(worker_env: str) -> None:
    at = open_app()
    assert any("has not finished its first sync" in i.value for i in at.info)
    assert "Last sync: never" in _sidebar_text(at)


def test_embedded_mode_syncs_in_this_process_and_offers_sync_now(app_env: SandboxServer) -> None:
    at = open_app()
    assert "Syncing: this process" in _sidebar_text(at)
    assert [b for b in at.sidebar.button if b.label == "Sync now"]


def test_worker_mode_in_local_mode_needs_the_worker_s_sandbox(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox of the dashboard's own would be an account the worker never syncs: a clear message instead."""
    monkeypatch.setenv("ALMA_OPS_SYNC", "worker")
    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()
    assert not at.exception
    assert "Configuration error" in at.error[0].value and "ALMA_OPS_SANDBOX_URL" in at.error[0].value
