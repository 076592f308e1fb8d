"""Where Stripe sends the customer back after Alma (settings.return_url). Reads the intent id and client
secret from the query, checks the secret against the intent through the gateway (never shown), shows the
outcome, and drops the parameters from the address bar and the history so the secret does not linger."""

from __future__ import annotations

import streamlit as st

from dashboard import ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.domain import failure_kind
from dashboard.money import format_eur
from dashboard.plain_text import literal
from dashboard.return_link import ReturnCheck, check_return, redirect_status

OUTCOMES = {
    "succeeded": (st.success, "Success! Payment received."),
    "processing": (st.info, "Payment processing. We'll update you when payment is received."),
    "requires_payment_method": (st.error, "Payment failed. Please try another payment method."),
    # Not in Stripe's sample, which knows only automatic capture: a manual-capture approval lands here.
    "requires_capture": (st.success, "Payment authorised. It will be received once captured."),
}
UNKNOWN_OUTCOME = (st.warning, "Something went wrong.")
FORGET_QUERY_SCRIPT = "<script>history.replaceState(history.state, '', location.pathname)</script>"

ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()


params = st.query_params
if "payment_intent" in params or "payment_intent_client_secret" in params:
    landing = params.get("payment_intent", "")
    if st.session_state.get("return_checked") == landing:
        # A rerun of this landing: the browser still sends the query it loaded with. Clearing it now only
        # adds a clean history entry, since the one holding the secret was already overwritten (below).
        params.clear()
    else:
        st.session_state["return_checked"] = landing
        st.session_state["return_check"] = check_return(
            app.gateway, params.get("payment_intent"), params.get("payment_intent_client_secret")
        )
        st.session_state["return_redirect_status"] = redirect_status(params.get("redirect_status", ""))
        # Overwrite the history entry that holds the client secret. st.query_params.clear() would push a
        # new entry and leave that one behind for the back button and the browser's history.
        st.html(FORGET_QUERY_SCRIPT, unsafe_allow_javascript=True)
        ui.sync_after_write()  # the redirect usually follows a state change: bring it into the store

check: ReturnCheck = st.session_state.get(
    "return_check", ReturnCheck(None, "No payment to show: open this page through Stripe's return link.")
)
if check.error is not None:
    ui_widgets.show_gateway_error(check.error, "check the payment")
elif check.intent is None:
    st.error(check.problem)
else:
    show, message = OUTCOMES.get(check.intent.status, UNKNOWN_OUTCOME)
    show(message)
    intent = check.intent
    badge = ui_widgets.status_badge(intent.status, failure_kind(intent, app.settings.auth_window_seconds))
    st.markdown(f"Payment {literal(intent.id)} · {format_eur(intent.amount)} · {badge}")
    if reported := st.session_state.get("return_redirect_status"):
        st.caption(
            f"The redirect said: {literal(reported)} (the status above is the payment's own, checked with Stripe)."
        )

links = st.columns(2)
if ui_access.may(Permission.TEST_LAB):  # otherwise the Test lab is not registered for this person
    links[0].page_link("app_pages/lab.py", label="Back to Test lab")
if check.intent is not None:
    links[1].page_link(
        "app_pages/intents.py", label="Open this intent's detail", query_params={"intent": check.intent.id}
    )
