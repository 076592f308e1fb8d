"""The entry script: navigation, the mode banners, the sidebar, and live mode's read-only promise."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from dashboard import ui
from dashboard.gateway import StripeGateway
from dashboard.settings import AUTH_WINDOW_SECONDS, load_settings
from dashboard.store import IntentStore
from tests.conftest import ROOT, TEST_KEY, SandboxServer, free_port
from tests.pages.conftest import clear_app_caches, create_intent, open_app

PAGES = {
    "app_pages/overview.py": "Overview",
    "app_pages/intents.py": "Intents",
    "app_pages/lab.py": "Test lab",
    "app_pages/expiry_watch.py": "Expiry watch",
    "app_pages/reports.py": "Reports",
}
LIVE_KEY = "sk_live_fake_for_tests_9876"  # not a key: no long run a scanner takes for one
WRITE_LABELS = {
    "Create test intent",
    "Cancel",
    "Capture",
    "Create another",
    "+1 min",
    "+15 min",
    "+61 min",
    "Open approve/decline page",
}


def _walk(node: Any) -> Iterator[Any]:
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


def rendered_text(at: AppTest) -> str:
    """Every element's protobuf, main area and sidebar: what the browser would receive."""
    return "\n".join(
        str(node.proto) for root in (at.main, at.sidebar) for node in _walk(root) if hasattr(node, "proto")
    )


def labels(at: AppTest) -> set[str]:
    return {
        node.proto.label
        for root in (at.main, at.sidebar)
        for node in _walk(root)
        if hasattr(node, "proto") and hasattr(node.proto, "label")
    }


def choose_90_days(at: AppTest) -> AppTest:
    at.button_group(key="period").set_value("90 d")
    return at.run()


def test_each_page_heading_is_its_navigation_name(app_env: SandboxServer) -> None:
    at = open_app()
    for path, title in PAGES.items():
        at.switch_page(path).run()
        assert not at.exception
        assert [t.value for t in at.title] == [title], path


def test_local_mode_banner_and_sidebar(app_env: SandboxServer) -> None:
    at = open_app()

    assert at.info[0].value.startswith("Local sandbox — no real money")
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "Mode: **local**" in sidebar and "embedded sandbox" in sidebar
    assert "Last sync: never" not in sidebar  # the first sync finished before the page drew


def test_local_mode_starts_its_own_sandbox_and_keeps_it_with_the_store(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` with no key: a demo sandbox of the app's own, whose account outlives a restart."""
    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")
    monkeypatch.setenv("ALMA_OPS_DEMO_INTENTS", "25")
    at = choose_90_days(open_app())
    assert at.metric[0].value == "25"
    started = ui.services()
    assert started.sandbox is not None and started.sandbox.base_url != app_env.base_url
    create_intent(started.gateway, 5_000)  # one more than any fresh demo seed would have
    next(b for b in at.sidebar.button if b.label == "Sync now").click()
    assert at.run().metric[0].value == "26"

    clear_app_caches()  # a restart: the sandbox process stops, its account stays in the state file
    assert started.sandbox.process is not None and started.sandbox.process.poll() is not None
    at = choose_90_days(open_app())
    assert at.metric[0].value == "26"


def test_a_store_left_by_another_sandbox_starts_over(
    app_env: SandboxServer, gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    for amount in (5_000, 6_000, 7_000):
        create_intent(gateway, amount)
    at = choose_90_days(open_app())
    assert at.metric[0].value == "3"
    clear_app_caches()

    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")  # now the app's own demo sandbox, which never saw those three
    monkeypatch.setenv("ALMA_OPS_DEMO_INTENTS", "10")
    at = choose_90_days(open_app())

    assert at.metric[0].value == "10"


def test_sync_now_brings_new_intents(
    app_env: SandboxServer, gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_OPS_REFRESH_SECONDS", "3600")  # only the button syncs during this test
    at = open_app()
    assert at.metric[0].value == "0"
    create_intent(gateway, 5_000)
    at.run()
    assert at.metric[0].value == "0"

    next(b for b in at.sidebar.button if b.label == "Sync now").click()
    at.run()

    assert at.metric[0].value == "1"


@pytest.fixture
def stripe_mode(monkeypatch: pytest.MonkeyPatch, app_env: SandboxServer) -> SandboxServer:
    """Stripe-mode settings pointed at the sandbox (STRIPE_API_BASE), as a deployment against Stripe would be."""
    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")
    monkeypatch.setenv("STRIPE_API_BASE", app_env.base_url)
    return app_env


def test_test_mode_masks_the_key_and_links_to_the_stripe_dashboard(
    stripe_mode: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("ALMA_OPS_ANONYMOUS_ROLE", "operator")  # test mode is read-only for anonymous viewers
    gateway = StripeGateway(load_settings(os.environ))
    intent = create_intent(gateway, 5_000).intent

    at = open_app()
    assert at.warning[0].value.startswith("Stripe test mode")
    assert "sk_test_…4242" in " ".join(c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/intents.py").run()

    table = at.dataframe[0].value
    assert list(table["stripe"]) == [f"https://dashboard.stripe.com/test/payments/{intent.id}"]
    assert TEST_KEY not in rendered_text(at)
    at.switch_page("app_pages/lab.py").run()
    assert "Create test intent" in labels(at)
    assert TEST_KEY not in rendered_text(at)


def test_live_mode_is_read_only(
    stripe_mode: SandboxServer, monkeypatch: pytest.MonkeyPatch, gateway: StripeGateway, store: IntentStore
) -> None:
    # The store already holds an intent waiting on its customer (e.g. synced before a key rotation).
    waiting = create_intent(gateway, 5_000).intent
    store.upsert_intents([gateway.retrieve_intent(waiting.id)])
    monkeypatch.setenv("STRIPE_SECRET_KEY", LIVE_KEY)
    before = stripe_mode.stats()

    at = open_app()

    assert at.error[0].value.startswith("Live mode — read-only")
    with pytest.raises(ValueError):
        at.switch_page("app_pages/lab.py")  # not registered at all
    for path in ("app_pages/overview.py", "app_pages/intents.py", "app_pages/expiry_watch.py", "app_pages/return.py"):
        at.switch_page(path).run()
        assert not at.exception, path
        assert not labels(at) & WRITE_LABELS, path
        assert not at.get("form"), path
        assert LIVE_KEY not in rendered_text(at)
    at.switch_page("app_pages/intents.py")
    at.query_params["intent"] = waiting.id
    at.run()
    assert [h.value for h in at.subheader] == [f"Intent `{waiting.id}`"]
    assert not labels(at) & WRITE_LABELS, "a live customer's payment page is not for staff to open"
    assert "sk_live_…9876" in " ".join(c.value for c in at.sidebar.caption)
    writes = {route for route in stripe_mode.stats() if route.startswith("POST")} - set(before)
    assert not writes
    # The sandbox takes test keys only: the sync's refusal is shown as Stripe's error, not a traceback.
    assert any("Sync failed" in e.value for e in at.sidebar.error)


def test_a_malformed_key_is_a_configuration_error(app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "pk_test_publishable")

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30).run()

    assert not at.exception
    assert at.error[0].value.startswith("Configuration error: STRIPE_SECRET_KEY must start with")
    assert "pk_test_publishable" not in rendered_text(at)


def test_a_sandbox_that_is_not_answering_is_reported_on_every_page(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local mode reads the sandbox's clock over HTTP: a sandbox that is down is a message, not a traceback."""
    monkeypatch.setenv("ALMA_OPS_SANDBOX_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there

    at = open_app()
    for path in PAGES:
        at.switch_page(path).run()
        assert not at.exception, path
        assert any(e.value.startswith("The local sandbox is not answering (") for e in at.error), path


def _file_in_the_way(db: Path) -> None:
    db.parent.write_text("a file where the store's folder should be")


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"not sqlite at all " * 100)


def _newer_schema(db: Path) -> None:
    IntentStore(db, AUTH_WINDOW_SECONDS).close()
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE schema_version SET version = version + 1")


@pytest.mark.parametrize(
    ("spoil", "db_name", "cause"),
    [
        (_file_in_the_way, "blocked/store.sqlite3", "[Errno 17] File exists"),
        (_not_a_database, "store.sqlite3", "file is not a database"),
        (_newer_schema, "store.sqlite3", "has schema version"),
    ],
)
def test_a_store_that_cannot_open_is_a_one_line_message(
    app_env: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    spoil: Callable[[Path], None],
    db_name: str,
    cause: str,
) -> None:
    db = tmp_path / "spoiled" / db_name
    db.parent.parent.mkdir(parents=True, exist_ok=True)
    if db_name == "store.sqlite3":
        db.parent.mkdir()
    spoil(db)
    monkeypatch.setenv("ALMA_OPS_DB", str(db))

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30).run()

    assert not at.exception
    [error] = at.error
    assert error.value.startswith("Alma Ops could not start — ") and cause in error.value, error.value
    assert "\n" not in error.value


def test_a_sandbox_that_does_not_start_shows_its_last_words_not_its_traceback(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")  # the app starts its own sandbox…
    with socket.socket() as taken:  # …on a port something else holds, so it dies at once
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("ALMA_OPS_SANDBOX_PORT", str(taken.getsockname()[1]))

        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()

    assert not at.exception
    [error] = at.error
    assert error.value.startswith("The local sandbox did not start — sandbox exited with code"), error.value
    assert "Traceback" not in error.value and "\n" not in error.value
    assert "address" in error.value.lower(), error.value  # the exception's own line: the port is in use


def test_without_a_public_url_customers_return_to_this_server_s_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALMA_OPS_PUBLIC_URL", raising=False)
    st.cache_resource.clear()
    streamlit_config.set_option("server.port", 8642)
    try:
        assert ui.app_settings().return_url == "http://localhost:8642/return"
    finally:
        streamlit_config.set_option("server.port", 8501)
        st.cache_resource.clear()


def banner_text(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning if "sync" in w.value)


def test_a_failing_sync_puts_a_banner_on_every_page_in_the_modes_words(app_env: SandboxServer) -> None:
    at = open_app()
    assert banner_text(at) == ""  # just synced: nothing to say

    app_env.faults(rate=1.0, kinds="429")
    next(b for b in at.button if b.label == "Sync now").click()
    at.run()
    for page in ("app_pages/overview.py", "app_pages/intents.py", "app_pages/expiry_watch.py", "app_pages/lab.py"):
        at.switch_page(page)
        at.run()
        text = banner_text(at)
        assert "the local sandbox answered 429 (too many requests)" in text, page
        assert "The data is from the last successful sync" in text
    app_env.faults(rate=0.0)
