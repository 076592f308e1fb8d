"""Cancel and Capture on any intent's detail (Intents page), for a person whose role may act on intents.

Each goes through a dialog that states the amount before anything is sent; the write itself is the action
layer's (permission, idempotency key, audit row), and its outcome, Stripe's code and message included, is shown
under the buttons after the dialog closes. A keyboard user reaches all of it: buttons, a text field, a dialog.
"""

from __future__ import annotations

import streamlit as st

from dashboard import actions, ui, ui_widgets
from dashboard.access import Permission, Principal
from dashboard.domain import CANCELABLE_STATUSES, AlmaIntent, capture_deadline
from dashboard.form_input import parse_amount
from dashboard.gateway import GatewayError
from dashboard.money import capture_confirmation, cents_to_decimal_text, format_eur, release_confirmation
from dashboard.wiring import Services

_RESULT = "intent_action_result"  # session key: (intent id, "success" | "error", text) of the last action
# Session key: (intent id, "capture" | "cancel", cents) while its dialog is open. Kept in the session rather than
# in the button's one-run value, so the dialog is drawn again on every run until it is answered or dismissed.
_PENDING = "intent_action_pending"


def _forget_pending() -> None:
    st.session_state.pop(_PENDING, None)


def _finish(intent_id: str, kind: str, text: str) -> None:
    _forget_pending()
    st.session_state[_RESULT] = (intent_id, kind, text)
    ui.sync_after_write()
    st.rerun()  # closes the dialog; the detail redraws from the store


def _send_capture(app: Services, who: Principal, intent: AlmaIntent, cents: int) -> None:
    try:
        captured = actions.capture_intent(app, who, intent.id, cents, ui.SUBMISSIONS)
    except GatewayError as error:
        _finish(intent.id, "error", ui_widgets.gateway_error_text(error, "capture"))
    else:
        _finish(intent.id, "success", f"Captured {format_eur(captured.amount_received)} — status {captured.status}.")


def _send_cancel(app: Services, who: Principal, intent: AlmaIntent) -> None:
    try:
        canceled = actions.cancel_intent(app, who, intent.id, ui.SUBMISSIONS)
    except GatewayError as error:
        _finish(intent.id, "error", ui_widgets.gateway_error_text(error, "cancel"))
    else:
        _finish(intent.id, "success", f"Canceled — status {canceled.status}.")


def _back() -> None:
    _forget_pending()
    st.rerun()


@st.dialog("Capture this payment?", on_dismiss=_forget_pending)
def _capture_dialog(app: Services, who: Principal, intent: AlmaIntent, cents: int) -> None:
    st.warning(capture_confirmation(cents, intent.amount_capturable))
    confirm, back = st.columns(2)
    if confirm.button("Confirm capture", type="primary", key="detail_confirm_capture"):
        _send_capture(app, who, intent, cents)
    if back.button("Back", key="detail_back_capture"):
        _back()


@st.dialog("Cancel this payment?", on_dismiss=_forget_pending)
def _cancel_dialog(app: Services, who: Principal, intent: AlmaIntent) -> None:
    if intent.status == "requires_capture":
        st.warning(release_confirmation(intent.amount_capturable))
    else:
        st.warning(f"Cancel this {format_eur(intent.amount)} payment: the customer can no longer complete it.")
    confirm, back = st.columns(2)
    if confirm.button("Confirm cancel", type="primary", key="detail_confirm_cancel"):
        _send_cancel(app, who, intent)
    if back.button("Back", key="detail_back_cancel"):
        _back()


def intent_actions(app: Services, who: Principal, intent: AlmaIntent) -> None:
    """Cancel (the statuses Stripe allows) and Capture (requires_capture: full or partial, with its deadline)
    under an intent's detail. Draws nothing for a person who may not act on intents, or in live mode."""
    if not who.may(Permission.ACT_ON_INTENTS, app.settings.mode):
        return
    result = st.session_state.get(_RESULT)
    if result is not None and result[0] == intent.id:
        (st.success if result[1] == "success" else st.error)(result[2])
    capturable = intent.status == "requires_capture" and intent.amount_capturable > 0
    if not capturable and intent.status not in CANCELABLE_STATUSES:
        return
    st.markdown("##### Actions")
    if capturable:
        deadline = ui_widgets.local_datetime(capture_deadline(intent), app.settings)
        st.caption(
            f"{format_eur(intent.amount_capturable)} held; capture by {deadline}, or Stripe cancels it and the"
            " customer is not charged."
        )
        amount_column, button_column = st.columns([2, 1], vertical_alignment="bottom")
        text = amount_column.text_input(
            "Amount to capture (EUR)",
            value=cents_to_decimal_text(intent.amount_capturable),
            key=f"detail_capture_amount:{intent.id}",
        )
        if button_column.button("Capture…", key=f"detail_capture:{intent.id}"):
            cents, problem = parse_amount(
                text, min_cents=1, max_cents=intent.amount_capturable, range_label="Capturable:"
            )
            if problem:
                amount_column.error(problem)
            else:
                st.session_state[_PENDING] = (intent.id, "capture", cents)
    if intent.status in CANCELABLE_STATUSES and st.button("Cancel payment…", key=f"detail_cancel:{intent.id}"):
        st.session_state[_PENDING] = (intent.id, "cancel", 0)
    pending = st.session_state.get(_PENDING)
    if pending is not None and pending[0] == intent.id:
        if pending[1] == "capture":
            _capture_dialog(app, who, intent, pending[2])
        else:
            _cancel_dialog(app, who, intent)
