"""Issue 14 in a real browser: the stale banner once the sandbox stops, Test lab's card following an approval
without a reload, and a filtered Intents view shared as a link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AppServer, create_test_intent, open_alma_page, running_app, visit
from tests.e2e.test_flows import screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_app(tmp_path: Path) -> Iterator[AppServer]:
    """An app and sandbox of this test's own: stopping the sandbox must not break the shared one."""
    with running_app(tmp_path) as app:
        yield app


def test_stale_banner_once_the_sandbox_stops(page: Page, own_app: AppServer) -> None:
    visit(page, own_app, "", "Overview")
    banner = page.get_by_text(re.compile(r"the local sandbox is not answering"))
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    expect(banner).to_have_count(0)

    own_app.sandbox.stop()

    expect(banner).to_be_visible()  # appears on its own, no reload
    expect(page.get_by_text(re.compile(r"Restart the app"))).to_be_visible()
    expect(page.get_by_test_id("stMetric").first).to_be_visible()  # the stored figures stay
    screenshot(page, "stale_banner.png")
    for path, heading in (("intents", "Intents"), ("expiry_watch", "Expiry watch")):
        visit(page, own_app, path, heading)
        expect(banner).to_be_visible()


def test_test_lab_card_follows_an_approval_without_a_reload(page: Page, app_server: AppServer) -> None:
    intent_id = create_test_intent(page, app_server, "123.45")
    card = page.get_by_test_id("stAlert").filter(has_text=f"Created {intent_id}")
    expect(card).to_contain_text("Awaiting customer")
    recent = page.locator(f".st-key-recent-{intent_id}")  # its card in the recent list, by the card's key
    expect(recent.get_by_role("button", name="Cancel")).to_be_visible()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    alma = open_alma_page(page)
    alma.get_by_role("button", name="Authorize test payment").click()
    expect(alma.get_by_text("Success! Payment received.")).to_be_visible()
    alma.close()

    expect(card).to_contain_text("Succeeded")  # within the refresh interval, no click, no reload
    # Its card in the recent list follows too: a paid intent offers a refund, no longer a cancel.
    expect(recent.get_by_text("Refund (up to €123.45)")).to_be_visible()
    expect(recent.get_by_role("button", name="Cancel")).to_have_count(0)
    assert [url for url in navigations if "test_lab" in url and "created=" not in url] == []
    screenshot(page, "test_lab_following.png")

    page.reload()  # the card survives a reload: its intent is in the URL
    expect(page.get_by_test_id("stAlert").filter(has_text=f"Created {intent_id}")).to_contain_text("Succeeded")


def test_a_filtered_intents_view_opens_from_its_link(page: Page, app_server: AppServer) -> None:
    visit(page, app_server, "intents?intents_status=Succeeded&include_test=true", "Intents")
    expect(page.get_by_text(re.compile(r"intents? match(es)? the filters"))).to_be_visible()
    chosen = page.get_by_test_id("stMultiSelect").filter(has=page.get_by_test_id("stWidgetLabel").get_by_text("Status"))
    expect(chosen).to_contain_text("Succeeded")
    expect(page.get_by_role("switch", name="Include Test lab intents")).to_be_checked()
