"""Alma Ops entry point: `streamlit run streamlit_app.py`. Sign-in gate, navigation, mode banner and sidebar;
the pages draw the rest. The navigation registers only the pages the person's role may open (dashboard/access.py):
in live mode that never includes the Test lab, so no write control is reachable.

The pages live in app_pages/, not pages/: a pages/ folder puts Streamlit in its legacy multipage mode until
st.navigation first runs, so the first deep link after a restart would skip this script (no banner, no
sidebar, and every file, Test lab included, listed in the navigation even in live mode)."""

from __future__ import annotations

import streamlit as st

from dashboard import ui, ui_access, ui_chrome
from dashboard.settings import SettingsError
from dashboard.wiring import STARTUP_ERRORS

st.set_page_config(page_title="Alma Ops", layout="wide")

try:
    settings = ui.app_settings()
    who = ui_access.gate(settings)  # the sign-in screen or the "no access" page end the run here
except SettingsError as error:
    st.error(f"Configuration error: {error}")
    st.stop()

pages = {
    "overview": st.Page("app_pages/overview.py", title="Overview", default=True),
    "intents": st.Page("app_pages/intents.py", title="Intents"),
    "test_lab": st.Page("app_pages/lab.py", title="Test lab", url_path="test_lab"),
    "expiry_watch": st.Page("app_pages/expiry_watch.py", title="Expiry watch"),
    "reports": st.Page("app_pages/reports.py", title="Reports"),
    "alerts": st.Page("app_pages/alerts.py", title="Alerts"),
    "audit": st.Page("app_pages/audit.py", title="Audit"),
    # Stripe sends the customer back here (settings.return_url); not a page anyone navigates to.
    "return": st.Page("app_pages/return.py", title="Payment result", url_path="return", visibility="hidden"),
}
page = st.navigation(ui_access.navigation(who, settings, pages))

try:
    app = ui.services()
except SettingsError as error:  # e.g. a worker-mode dashboard in local mode with no sandbox to attach to
    st.error(f"Configuration error: {error}")
    st.stop()
except STARTUP_ERRORS as error:
    st.error(ui.startup_problem(error))
    st.stop()
ui_chrome.mode_banner(settings)
st.title(page.title)  # the heading is the navigation name, by construction
ui_chrome.wait_for_first_sync(app)
ui_chrome.freshness_banner(app)
ui_access.sidebar_identity(who)
ui_chrome.sidebar(app)
page.run()
