"""What QA testers and ops do, in a real browser: create, approve or fail on the sandbox's Alma page, land on
the return page, see it counted; watch an intent expire without reloading; capture a manual one.

The tests share one app and one sandbox and run in file order; each works on intents it creates itself."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import (
    CLIENT_SECRET,
    DOCS,
    AppServer,
    create_test_intent,
    open_alma_page,
    visit,
)

pytestmark = pytest.mark.e2e
# `make screenshots` sets it: the README's pictures are taken on purpose, not by every test run.
SCREENSHOTS = os.environ.get("E2E_SCREENSHOTS")
SANDBOX_TIME = "%Y-%m-%d %H:%M:%S"
# After a clock button, the caption shows the new time plus however long the rerun took: this much at most.
RERUN_SECONDS = 120
ROW_PX = 35  # st.dataframe's row height


def metric(page: Page, label: str) -> Locator:
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def eur(text: str) -> Decimal:
    return Decimal(text.replace("€", "").replace(",", ""))


def screenshot(page: Page, name: str) -> None:
    """Into docs/ for the README (only under `make screenshots`), once every table on the page has drawn its
    rows and the browser has painted them."""
    if not SCREENSHOTS:
        return
    page.bring_to_front()  # a background tab gets no animation frames, so its table canvases stay blank
    for grid in page.get_by_test_id("stDataFrame").all():
        expect(grid.locator("[role=gridcell]").first).to_be_attached()
    # glide paints its canvas a frame after the DOM mirror: wait for two painted frames
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.screenshot(path=DOCS / name)


def advance_sandbox_clock(page: Page, label: str, seconds: int) -> None:
    """Click a Test lab clock button and wait until the shown sandbox time has moved by `seconds` (plus the
    rerun's own few seconds): a caption that merely changed could be a rerun's fresh reading with the click
    lost."""
    caption = page.get_by_text(re.compile(r"^Sandbox time:"))
    found = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", caption.inner_text())
    assert found, caption.inner_text()
    moved = datetime.strptime(found.group(0), SANDBOX_TIME) + timedelta(seconds=seconds)
    expected = (moved + timedelta(seconds=extra) for extra in range(RERUN_SECONDS))
    page.get_by_role("button", name=label).click()
    expect(caption).to_have_text(re.compile("|".join(re.escape(t.strftime(SANDBOX_TIME)) for t in expected)))


def click_row_box(grid: Locator, row: Locator) -> None:
    """Click the selection box at the left of a table row: glide draws rows on a canvas, so by pixel (rows are
    ROW_PX tall under a header as tall; the DOM mirror's aria-rowindex counts the header as row 1)."""
    index = int(row.get_attribute("aria-rowindex") or 0)
    box = grid.bounding_box()
    assert index > 1 and box is not None
    grid.page.mouse.click(box["x"] + 14, box["y"] + ROW_PX * (index - 1) + ROW_PX / 2)


def assert_secret_gone_from_history(landing: Page) -> None:
    expect(landing).not_to_have_url(CLIENT_SECRET)
    landing.go_back()
    assert not CLIENT_SECRET.search(landing.url), "the back button must not lead to the client secret"


def test_1_authorize_lands_on_success_and_overview_counts_it(page: Page, app_server: AppServer) -> None:
    visit(page, app_server, "", "Overview")
    volume_before = eur(metric(page, "Volume succeeded").inner_text())

    intent_id = create_test_intent(page, app_server, "123.45")
    alma = open_alma_page(page)
    alma.get_by_role("button", name="Authorize test payment").click()

    expect(alma.get_by_text("Success! Payment received.")).to_be_visible()
    expect(alma.get_by_text(intent_id)).to_be_visible()
    assert_secret_gone_from_history(alma)

    visit(page, app_server, "", "Overview")
    expect(metric(page, "Volume succeeded")).to_have_text(f"€{volume_before:,.2f}")  # a test order is not revenue
    expect(page.get_by_text(re.compile(r"Test lab intents? left out of these figures"))).to_be_visible()
    page.get_by_text("Include Test lab intents", exact=True).click()  # the label takes the click
    expect(metric(page, "Volume succeeded")).to_have_text(f"€{volume_before + Decimal('123.45'):,.2f}")
    screenshot(page, "overview.png")


def test_2_fail_shows_the_failure_and_intents_shows_it_declined(page: Page, app_server: AppServer) -> None:
    intent_id = create_test_intent(page, app_server, "88")
    alma = open_alma_page(page)
    alma.get_by_role("button", name="Fail test payment").click()

    expect(alma.get_by_text("Payment failed. Please try another payment method.")).to_be_visible()
    alma.get_by_role("link", name="Open this intent's detail").click()

    expect(alma.get_by_role("heading", name=f"Intent {intent_id}")).to_be_visible()
    expect(alma.get_by_text("Declined", exact=True).first).to_be_visible()  # the status in words, as a badge
    expect(alma.get_by_text("requires_payment_method", exact=True)).to_be_visible()  # and the API's name
    expect(alma.get_by_text("payment_intent_payment_attempt_failed")).to_be_visible()

    # The same detail from the Intents page: search, see the row declined, then pick it by the picker's label
    # (the table's rows are drawn on a canvas: only a click by pixel could select one).
    visit(page, app_server, "intents?include_test=true", "Intents")  # a Test lab intent: asked for
    page.get_by_role("textbox", name="Search").fill(intent_id)
    page.get_by_role("textbox", name="Search").press("Enter")
    expect(page.get_by_text(re.compile(r"^1 intent matches the filters · "))).to_be_visible()
    # glide's grid mirrors its cells in the DOM, hidden from the accessibility tree; the search left one row
    # (the default columns leave the id out: it is in the search box and the detail's heading)
    row = page.get_by_test_id("stDataFrame").first.locator("[role=row]").nth(1)
    expect(row.locator("[role=gridcell]").filter(has_text=re.compile(r"^Declined$"))).to_be_attached()
    picker = page.get_by_role("combobox", name="Intent detail")
    picker.fill(intent_id)
    picker.press("Enter")
    expect(page.get_by_role("heading", name=f"Intent {intent_id}")).to_be_visible()
    expect(page.get_by_text("Declined (payment_intent_payment_attempt_failed)")).to_be_attached()  # timeline
    screenshot(page, "intents.png")


def test_3_expiry_moves_to_recently_expired_without_a_reload(page: Page, app_server: AppServer) -> None:
    intent_id = create_test_intent(page, app_server, "77")
    watch = page.context.new_page()
    visit(watch, app_server, "expiry_watch", "Expiry watch")
    waiting = watch.get_by_test_id("stMarkdownContainer").filter(has_text=intent_id)
    expect(waiting).to_be_visible()
    navigations: list[str] = []
    watch.on("framenavigated", lambda frame: navigations.append(frame.url))
    last_sync = watch.get_by_test_id("stSidebar").get_by_text(re.compile(r"^Last sync:"))
    synced_before = last_sync.inner_text()

    page.get_by_role("button", name="+61 min").click()  # in the Test lab tab

    # Only Recently expired can hold an expired intent; glide's grid mirrors its cells in the DOM.
    expired_row = watch.get_by_test_id("stDataFrame").locator("[role=row]").filter(has_text=intent_id)
    expect(expired_row.locator("[role=gridcell]").nth(2)).to_have_text("Expired")
    expect(waiting).to_have_count(0)
    # The sandbox clock jumped an hour: the sidebar's last sync follows the page's "as of", not the load time.
    expect(last_sync).not_to_have_text(synced_before)
    assert navigations == [], "the watch tab must update in place"

    # For the screenshot: three customers on Alma's page with 30, 45 and 60 minutes left.
    for amount in ("240", "99.90", "1200"):
        create_test_intent(page, app_server, amount)
        if amount != "1200":
            advance_sandbox_clock(page, "+15 min", 15 * 60)
    expect(watch.get_by_text(re.compile(r"^Awaiting customer \(3\)"))).to_be_visible()
    for minutes_left in ("(29|30)", "(44|45)", "(59|60)"):
        expect(watch.get_by_text(re.compile(rf"^{minutes_left} min \d+ s left"))).to_be_visible()
    screenshot(watch, "expiry_watch.png")

    # One click on the expired row's box opens its detail here, in this tab.
    grid = watch.get_by_test_id("stDataFrame").filter(has=watch.locator("[role=row]").filter(has_text=intent_id))
    click_row_box(grid, grid.locator("[role=row]").filter(has_text=intent_id))
    expect(watch.get_by_role("heading", name=f"Intent {intent_id}")).to_be_visible()
    assert watch.url.endswith(f"/intents?intent={intent_id}") and len(watch.context.pages) == 2


def test_4_manual_capture(page: Page, app_server: AppServer) -> None:
    intent_id = create_test_intent(page, app_server, "210", capture="manual")
    alma = open_alma_page(page)
    alma.get_by_role("button", name="Authorize test payment").click()
    expect(alma.get_by_text("Payment authorised. It will be received once captured.")).to_be_visible()
    alma.close()

    page.get_by_role("button", name="Sync now").click()
    card = (
        page.get_by_test_id("stVerticalBlock")
        .filter(has_text=intent_id)
        .filter(has=page.get_by_role("button", name="Capture"))
        .last
    )
    expect(card.get_by_role("textbox", name="Amount to capture (EUR)")).to_have_value("210.00")
    card.get_by_role("button", name="Capture").click()
    expect(page.get_by_text("Capture €210.00, the whole amount held.")).to_be_visible()
    card.get_by_role("button", name="Confirm capture").click()

    expect(page.get_by_text("Captured €210.00 — status succeeded.")).to_be_visible()
    expect(page.get_by_text(re.compile(rf"{intent_id} · Succeeded"))).to_be_visible()
    screenshot(page, "test_lab.png")
