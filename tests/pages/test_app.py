"""The entry script: navigation, the mode banners, the sidebar, and live mode's read-only promise."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import ui
from dashboard.gateway import StripeGateway
from dashboard.settings import load_settings
from dashboard.store import IntentStore
from tests.conftest import ROOT, TEST_KEY, SandboxServer
from tests.pages.conftest import clear_app_caches, create_intent, open_app

PAGES = {
    "app_pages/overview.py": "Overview",
    "app_pages/intents.py": "Intents",
    "app_pages/test_lab.py": "Test lab",
    "app_pages/expiry_watch.py": "Expiry watch",
}
LIVE_KEY = "sk_live_fake_for_tests_9876"  # not a key: no long run a scanner takes for one
WRITE_LABELS = {"Create test intent", "Cancel", "Capture", "Create another", "+1 min", "+15 min", "+61 min",
                "Open approve/decline page"}


def _walk(node: Any) -> Iterator[Any]:
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


def rendered_text(at: AppTest) -> str:
    """Every element's protobuf, main area and sidebar: what the browser would receive."""
    return "\n".join(str(node.proto) for root in (at.main, at.sidebar) for node in _walk(root)
                     if hasattr(node, "proto"))


def labels(at: AppTest) -> set[str]:
    return {node.proto.label for root in (at.main, at.sidebar) for node in _walk(root)
            if hasattr(node, "proto") and hasattr(node.proto, "label")}


def choose_90_days(at: AppTest) -> AppTest:
    at.button_group(key="overview_period").set_value("90 d")
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


def test_a_store_left_by_another_sandbox_starts_over(app_env: SandboxServer, gateway: StripeGateway,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for amount in (5_000, 6_000, 7_000):
        create_intent(gateway, amount)
    at = choose_90_days(open_app())
    assert at.metric[0].value == "3"
    clear_app_caches()

    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")  # now the app's own demo sandbox, which never saw those three
    monkeypatch.setenv("ALMA_OPS_DEMO_INTENTS", "10")
    at = choose_90_days(open_app())

    assert at.metric[0].value == "10"


def test_sync_now_brings_new_intents(app_env: SandboxServer, gateway: StripeGateway,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_test_mode_masks_the_key_and_links_to_the_stripe_dashboard(stripe_mode: SandboxServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", TEST_KEY)
    gateway = StripeGateway(load_settings(os.environ))
    intent = create_intent(gateway, 5_000).intent

    at = open_app()
    assert at.warning[0].value.startswith("Stripe test mode")
    assert "sk_test_…4242" in " ".join(c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/intents.py").run()

    table = at.dataframe[0].value
    assert list(table["stripe"]) == [f"https://dashboard.stripe.com/test/payments/{intent.id}"]
    assert TEST_KEY not in rendered_text(at)
    at.switch_page("app_pages/test_lab.py").run()
    assert "Create test intent" in labels(at)
    assert TEST_KEY not in rendered_text(at)


def test_live_mode_is_read_only(stripe_mode: SandboxServer, monkeypatch: pytest.MonkeyPatch,
                                gateway: StripeGateway, store: IntentStore) -> None:
    # The store already holds an intent waiting on its customer (e.g. synced before a key rotation).
    waiting = create_intent(gateway, 5_000).intent
    store.upsert_intents([gateway.retrieve_intent(waiting.id)])
    monkeypatch.setenv("STRIPE_SECRET_KEY", LIVE_KEY)
    before = stripe_mode.stats()

    at = open_app()

    assert at.error[0].value.startswith("Live mode — read-only")
    with pytest.raises(ValueError):
        at.switch_page("app_pages/test_lab.py")  # not registered at all
    for path in ("app_pages/overview.py", "app_pages/intents.py", "app_pages/expiry_watch.py",
                 "app_pages/return.py"):
        at.switch_page(path).run()
        assert not at.exception, path
        assert not labels(at) & WRITE_LABELS, path
        assert not at.get("form"), path
        assert LIVE_KEY not in rendered_text(at)
    at.switch_page("app_pages/intents.py")
    at.query_params["intent"] = waiting.id
    at.run()
    assert [h.value for h in at.subheader] == [f"Intent {waiting.id}"]
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


def test_no_material_icons_anywhere() -> None:
    sources = [ROOT / "streamlit_app.py", *sorted((ROOT / "app_pages").glob("*.py")), ROOT / "dashboard/ui.py"]
    assert all(":material/" not in Path(source).read_text() for source in sources)
