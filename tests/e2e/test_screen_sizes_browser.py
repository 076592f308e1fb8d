"""Issue 14 at a laptop's size: Overview and Intents at 1280×800, with the Intents table's default columns
all in view (no sideways scrolling), and the README's pictures of both."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import AppServer, visit
from tests.e2e.test_flows import screenshot

pytestmark = pytest.mark.e2e
LAPTOP = {"width": 1280, "height": 800}
DEFAULT_HEADERS = [re.compile(r"^Created"), "Customer", "Amount", "Status", "Failure", "Installments"]


def test_overview_and_intents_fit_a_1280_by_800_screen(
    browser: Browser, browser_context_args: dict[str, Any], app_server: AppServer
) -> None:
    page = browser.new_context(**{**browser_context_args, "viewport": LAPTOP}).new_page()
    visit(page, app_server, "", "Overview")
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts.first).to_be_visible()
    for chart in charts.all():
        expect(chart.locator("canvas, svg").first).to_be_visible()
    screenshot(page, "overview_1280.png")

    visit(page, app_server, "intents", "Intents")
    grid = page.get_by_test_id("stDataFrame")
    expect(grid.locator("[role=columnheader]")).to_have_text(DEFAULT_HEADERS)  # glide's DOM mirror
    box = grid.bounding_box()
    assert box is not None and box["x"] + box["width"] <= LAPTOP["width"]
    # glide scrolls sideways inside its own scroller when the columns are wider than the table
    scroll_width, client_width = grid.locator(".dvn-scroller").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert scroll_width <= client_width, "the default columns need sideways scrolling at 1280 px"
    screenshot(page, "intents_1280.png")
    page.context.close()
