"""Where Stripe sends the customer back after Alma (settings.return_url). Reads the intent id and client
secret from the query, checks the secret against the intent through the gateway (never shown), shows the
outcome, and drops the parameters from the address bar and the history so the secret does not linger."""

from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from dashboard import ui, ui_access
from dashboard.access import Permission
from dashboard.domain import AlmaIntent
from dashboard.gateway import GatewayError, NotFoundError
from dashboard.money import format_eur
from dashboard.plain_text import literal

INTENT_ID = re.compile(r"pi_[A-Za-z0-9]{1,255}")
SECRET_TAIL = re.compile(r"_secret_[A-Za-z0-9]{1,255}")
OUTCOMES = {
    "succeeded": (st.success, "Success! Payment received."),
    "processing": (st.info, "Payment processing. We'll update you when payment is received."),
    "requires_payment_method": (st.error, "Payment failed. Please try another payment method."),
    # Not in Stripe's sample, which knows only automatic capture: a manual-capture approval lands here.
    "requires_capture": (st.success, "Payment authorised. It will be received once captured."),
}
UNKNOWN_OUTCOME = (st.warning, "Something went wrong.")
REDIRECT_STATUS = re.compile(r"[a-z_]{1,40}")
FORGET_QUERY_SCRIPT = "<script>history.replaceState(history.state, '', location.pathname)</script>"

app = ui.services()


@dataclass(frozen=True)
class ReturnCheck:
    intent: AlmaIntent | None  # set only once the client secret matched
    problem: str | None  # what is wrong with the link, for the user


def check_return(intent_id: str | None, client_secret: str | None) -> ReturnCheck:
    if not intent_id or not client_secret:
        return ReturnCheck(
            None,
            "This link is incomplete: it needs the payment_intent and "
            "payment_intent_client_secret parameters Stripe adds on the way back.",
        )
    if not INTENT_ID.fullmatch(intent_id):
        return ReturnCheck(None, "This link is malformed: payment_intent must look like pi_….")
    secret_tail = client_secret[len(intent_id) :] if client_secret.startswith(intent_id) else ""
    if not SECRET_TAIL.fullmatch(secret_tail):
        return ReturnCheck(None, "This link is malformed: the client secret does not belong to that payment.")
    try:
        intent, matches = app.gateway.retrieve_intent_checking_secret(intent_id, client_secret)
    except NotFoundError:
        return ReturnCheck(None, "No such payment: the link does not point to a known payment intent.")
    except GatewayError as error:
        return ReturnCheck(None, ui.gateway_error_text(error, "check the payment"))
    if not matches:
        return ReturnCheck(None, "This link does not match the payment (wrong client secret), so nothing is shown.")
    return ReturnCheck(intent, None)


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
            params.get("payment_intent"), params.get("payment_intent_client_secret")
        )
        status = params.get("redirect_status", "")
        st.session_state["return_redirect_status"] = status if REDIRECT_STATUS.fullmatch(status) else None
        # Overwrite the history entry that holds the client secret. st.query_params.clear() would push a
        # new entry and leave that one behind for the back button and the browser's history.
        st.html(FORGET_QUERY_SCRIPT, unsafe_allow_javascript=True)
        ui.sync_after_write()  # the redirect usually follows a state change: bring it into the store

check: ReturnCheck = st.session_state.get(
    "return_check", ReturnCheck(None, "No payment to show: open this page through Stripe's return link.")
)
if check.intent is None:
    st.error(check.problem)
else:
    show, message = OUTCOMES.get(check.intent.status, UNKNOWN_OUTCOME)
    show(message)
    intent = check.intent
    st.markdown(f"Payment {literal(intent.id)} · {format_eur(intent.amount)} · {ui.status_badge(intent.status)}")
    if reported := st.session_state.get("return_redirect_status"):
        st.caption(
            f"The redirect said: {literal(reported)} (the status above is the payment's own, checked with Stripe)."
        )

links = st.columns(2)
if ui_access.may(Permission.TEST_LAB):  # otherwise the Test lab is not registered for this person
    links[0].page_link("app_pages/test_lab.py", label="Back to Test lab")
if check.intent is not None:
    links[1].page_link(
        "app_pages/intents.py", label="Open this intent's detail", query_params={"intent": check.intent.id}
    )
