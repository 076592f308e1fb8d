"""Sign-in end to end: a real browser, the app with [auth] and [roles], and a local OpenID Connect provider.
Each person logs in through the provider's own page and sees exactly what their role allows."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from dashboard.gateway import CaptureMethod, StripeGateway
from dashboard.sandbox.model import AlmaRules
from dashboard.settings import Settings
from tests.conftest import answer_alma_page
from tests.e2e.conftest import PEOPLE, AppServer, downloaded_text, sign_in
from tests.e2e.test_flows import screenshot
from tests.pages.conftest import create_intent

pytestmark = pytest.mark.e2e
NAVIGATION = ("Overview", "Intents", "Test lab", "Expiry watch", "Reports", "Alerts", "Audit")


def expect_navigation(page: Page, names: list[str]) -> None:
    expect(page.get_by_test_id("stSidebarNav").get_by_role("link")).to_have_text(names)


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", name=text, level=1)).to_be_visible()


def test_a_visitor_who_is_not_signed_in_sees_the_log_in_button_only(
    page: Page, signed_in_app_server: AppServer
) -> None:
    for path in ("", "intents", "intents?intent=pi_anything", "test_lab", "expiry_watch"):
        page.goto(f"{signed_in_app_server.url}/{path}")
        heading(page, "Alma Ops")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        expect(page.get_by_test_id("stSidebar")).to_have_count(0)
        expect(page.get_by_test_id("stMetric")).to_have_count(0)
        expect(page.get_by_test_id("stDialog")).to_have_count(0)
        assert "€" not in page.inner_text("body"), path
    screenshot(page, "sign_in.png")


def test_a_person_without_a_role_gets_no_access_then_logs_out(page: Page, signed_in_app_server: AppServer) -> None:
    sign_in(page, signed_in_app_server, "nobody")

    heading(page, "No access")
    expect(page.get_by_text("eve@elsewhere.org", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    page.goto(f"{signed_in_app_server.url}/intents")
    heading(page, "No access")
    expect(page.get_by_test_id("stDialog")).to_have_count(0)  # no "page not found" over it

    addresses: list[str] = []
    page.on("request", lambda request: addresses.append(request.url))
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="End session").click()  # the provider's own logout page
    assert any("client_id=" in address for address in addresses)  # the provider's logout was asked
    assert not [address for address in addresses if "id_token" in address]  # but not with the token
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_viewer_sees_three_pages_and_is_refused_test_lab_and_audit_by_url(
    page: Page, signed_in_app_server: AppServer, tmp_path: Path
) -> None:
    sign_in(page, signed_in_app_server, "viewer")

    heading(page, "Overview")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(f"{PEOPLE['viewer']['name']} · viewer")).to_be_visible()
    expect(sidebar.get_by_role("button", name="Log out")).to_be_visible()
    expect_navigation(page, ["Overview", "Intents", "Expiry watch", "Reports", "Alerts"])
    page.screenshot(path=tmp_path / "viewer.png")

    for path in ("test_lab", "audit"):
        page.goto(f"{signed_in_app_server.url}/{path}")
        heading(page, "Not available")
        expect(page.get_by_text("This page is not part of the viewer role here.")).to_be_visible()
        expect(page.get_by_role("button", name="Create test intent")).to_have_count(0)
        page.screenshot(path=tmp_path / f"viewer_{path}.png")


def test_operator_has_the_test_lab(page: Page, signed_in_app_server: AppServer) -> None:
    sign_in(page, signed_in_app_server, "operator")

    expect(page.get_by_test_id("stSidebar").get_by_text("Olga Ops · operator")).to_be_visible()
    expect_navigation(page, ["Overview", "Intents", "Test lab", "Expiry watch", "Reports", "Alerts"])
    page.goto(f"{signed_in_app_server.url}/test_lab")
    heading(page, "Test lab")
    expect(page.get_by_role("button", name="Create test intent")).to_be_visible()


def test_admin_has_every_page(page: Page, signed_in_app_server: AppServer) -> None:
    sign_in(page, signed_in_app_server, "admin")

    expect(page.get_by_test_id("stSidebar").get_by_text("Léa Admin · admin")).to_be_visible()
    expect_navigation(page, list(NAVIGATION))


def approved_intent(app: AppServer, amount: int, capture_method: CaptureMethod) -> str:
    """An intent its customer authorised, in the app's sandbox: paid, or awaiting capture when manual."""
    created = create_intent(StripeGateway(Settings(), api_base=app.sandbox.base_url), amount, capture_method)
    assert created.redirect_url
    answer_alma_page(created.redirect_url, "authorize")
    return created.intent.id


def audit_csv_rows(admin: Page) -> list[tuple[str, ...]]:
    """The Audit page's CSV (who, role, action, intent, amount in cents, outcome per row), downloaded."""
    rows = csv.DictReader(io.StringIO(downloaded_text(admin, "Download CSV")))
    return [(r["who"], r["role"], r["action"], r["intent_id"], r["amount_cents"], r["outcome"]) for r in rows]


def test_an_operator_s_capture_appears_on_the_admin_s_audit_page(
    browser: Browser, browser_context_args: dict[str, Any], signed_in_app_server: AppServer
) -> None:
    intent_id = approved_intent(signed_in_app_server, 15_000, "manual")
    operator = browser.new_context(**browser_context_args).new_page()
    sign_in(operator, signed_in_app_server, "operator")
    operator.goto(f"{signed_in_app_server.url}/intents?intent={intent_id}")
    # Made a moment ago, straight on the sandbox: the store has it once a sync ran (the background one may
    # not have yet), as an operator following a fresh link would do.
    heading(operator, "Intents")
    operator.get_by_role("button", name="Sync now").click()
    expect(operator.get_by_text("€150.00 held; capture by")).to_be_visible()
    operator.get_by_role("textbox", name="Amount to capture (EUR)").fill("120")
    operator.get_by_role("button", name="Capture…").click()
    dialog = operator.get_by_role("dialog")
    expect(dialog.get_by_text("Capture €120.00 of €150.00; the remaining €30.00 is released for good.")).to_be_visible()
    screenshot(operator, "capture_dialog.png")
    dialog.get_by_role("button", name="Confirm capture").click()
    expect(operator.get_by_text("Captured €120.00 — status succeeded.")).to_be_visible()
    operator.context.close()

    admin = browser.new_context(**browser_context_args).new_page()
    sign_in(admin, signed_in_app_server, "admin")
    expect_navigation(admin, list(NAVIGATION))
    admin.goto(f"{signed_in_app_server.url}/audit")
    heading(admin, "Audit")
    assert audit_csv_rows(admin) == [("olga@partner.org", "operator", "capture", intent_id, "12000", "ok")]
    expect(admin.get_by_test_id("stDataFrame")).to_be_visible()
    screenshot(admin, "audit.png")
    admin.context.close()


def grid(page: Page, column: str) -> Locator:
    """The table with this column header (glide mirrors its header and cells in the DOM)."""
    return page.get_by_test_id("stDataFrame").filter(
        has=page.locator("[role=columnheader]").filter(has_text=re.compile(rf"^{re.escape(column)}$"))
    )


def cell(table: Locator, row_text: str, column: str) -> Locator:
    """The cell in `column` of the row holding `row_text`, by the header's aria-colindex."""
    header = table.locator("[role=columnheader]").filter(has_text=re.compile(rf"^{re.escape(column)}$"))
    index = header.get_attribute("aria-colindex")
    row = table.locator("[role=row]").filter(has_text=row_text)
    return row.locator(f"[role=gridcell][aria-colindex='{index}']")


def refunded_in_month(page: Page, app: AppServer, month: str) -> Locator:
    """The Reports page's Refunded cell for the month starting `month` (per month, the default 90 days), after
    a sync. The DOM mirror holds the exact EUR number ("50", "1234.5"); the canvas draws it as euros."""
    page.goto(f"{app.url}/reports")
    heading(page, "Reports")
    page.get_by_role("button", name="Sync now").click()
    return cell(grid(page, "Refunded"), month, "Refunded")


def test_an_operator_s_refund_shows_in_the_detail_the_audit_and_the_finance_report(
    browser: Browser, browser_context_args: dict[str, Any], signed_in_app_server: AppServer, tmp_path: Path
) -> None:
    app = signed_in_app_server
    intent_id = approved_intent(app, 20_000, "automatic")
    # Refunds count in the month they are made: this one's, on the sandbox clock in the app's time zone.
    month = datetime.fromtimestamp(app.sandbox.now(), ZoneInfo(Settings().timezone)).strftime("%Y-%m-01")
    operator = browser.new_context(**browser_context_args).new_page()
    sign_in(operator, app, "operator")
    refunded_before = Decimal(refunded_in_month(operator, app, month).inner_text())  # its row holds the payment

    operator.goto(f"{app.url}/intents?intent={intent_id}")
    heading(operator, "Intents")
    operator.get_by_role("button", name="Sync now").click()  # paid a moment ago, straight on the sandbox
    expect(operator.get_by_role("heading", name=f"Intent {intent_id}")).to_be_visible()
    operator.get_by_test_id("stExpander").get_by_text("Refund (up to €200.00)").click()
    operator.get_by_role("textbox", name="Amount to refund (EUR)").fill("50")
    operator.get_by_role("button", name="Refund…").click()
    expect(
        operator.get_by_text("Refund €50.00 of the €200.00 left on this payment; €150.00 stays refundable.")
    ).to_be_visible()
    operator.get_by_role("button", name="Confirm refund of €50.00").click()
    expect(operator.get_by_text("Refund of €50.00 sent (pending).")).to_be_visible()

    refunds = grid(operator, "Refund id")
    expect(cell(refunds, "€50.00", "Status")).to_have_text("Pending")
    expect(operator.get_by_text("Alma refunds are asynchronous: pending until Alma settles them.")).to_be_visible()
    timeline = grid(operator, "Event id")
    expect(timeline.locator("[role=gridcell]").filter(has_text=re.compile(r"^Refund requested$"))).to_be_attached()
    expect(operator.get_by_test_id("stExpander").get_by_text("Refund (up to €150.00)")).to_be_visible()

    app.sandbox.advance(AlmaRules().refund_delay + 1)  # Alma settles it later: time passes on the sandbox
    operator.get_by_role("button", name="Sync now").click()
    expect(cell(refunds, "€50.00", "Status")).to_have_text("Succeeded")
    expect(timeline.locator("[role=gridcell]").filter(has_text=re.compile(r"^Refund updated$")).first).to_be_attached()
    expect(operator.get_by_text("Alma refunds are asynchronous")).to_have_count(0)
    operator.screenshot(path=tmp_path / "refund_succeeded.png")
    operator.context.close()

    admin = browser.new_context(**browser_context_args).new_page()
    sign_in(admin, app, "admin")
    admin.goto(f"{app.url}/audit")
    heading(admin, "Audit")
    audit_table = grid(admin, "Outcome")
    expect(cell(audit_table, intent_id, "Action")).to_have_text("refund")
    expect(cell(audit_table, intent_id, "Amount")).to_have_text("€50.00")
    rows = [row for row in audit_csv_rows(admin) if row[3] == intent_id]
    assert rows == [("olga@partner.org", "operator", "refund", intent_id, "5000", "ok")]

    refunded_after = (refunded_before + Decimal("50.00")).normalize()
    expect(refunded_in_month(admin, app, month)).to_have_text(f"{refunded_after:f}")
    admin.screenshot(path=tmp_path / "reports.png")
    admin.context.close()
