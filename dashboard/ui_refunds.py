"""UI glue for an intent's money after payment: its fee, net and refunds, and the Refund action (operators;
Stripe test mode or the local sandbox only). Shared by the Intents detail and Test lab, so both refund alike.

The action is said in words and confirmed before it is sent; the submission keys the refund, so a double
click or a rerun refunds once; it goes through dashboard.actions (who acts, their permission) and comes back
through the sync like any other change.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import actions, ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.domain import AlmaIntent
from dashboard.gateway import REFUND_REASONS, GatewayError, RefundRequest
from dashboard.money import AmountError, cents_to_decimal_text, format_eur, parse_eur, refund_confirmation
from dashboard.plain_text import visible
from dashboard.wiring import Services

REASON_WORDS = {
    "requested_by_customer": "Requested by the customer",
    "duplicate": "Duplicate payment",
    "fraudulent": "Fraudulent",
}


def refundable_cents(app: Services, intent: AlmaIntent) -> int:
    """What is left to refund: received, less refunds pending or made (failed ones gave the money back)."""
    refunded = sum(refund.amount for refund in app.store.refunds_of(intent.id) if refund.counts)
    return max(intent.amount_received - refunded, 0) if intent.status == "succeeded" else 0


def money_facts(app: Services, intent: AlmaIntent) -> dict[str, str | None]:
    """Fee, net and refunded as the balance shows them (None while no money moved)."""
    money = app.store.money_of([intent.id]).get(intent.id)
    if money is None:
        return {"Fee": None, "Net": None, "Refunded": None}
    return {"Fee": format_eur(money.fee), "Net": format_eur(money.net), "Refunded": format_eur(money.refunded)}


def refunds_table(app: Services, intent: AlmaIntent, when: Callable[[int | None], str]) -> None:
    refunds = app.store.refunds_of(intent.id)
    if not refunds:
        return
    st.markdown("##### Refunds")
    st.dataframe(
        pd.DataFrame(
            {
                "When": [when(refund.created) for refund in refunds],
                "Amount": [format_eur(refund.amount) for refund in refunds],
                "Status": [visible(refund.status.replace("_", " ").capitalize()) for refund in refunds],
                "Reason": [visible(REASON_WORDS.get(refund.reason or "", refund.reason or "—")) for refund in refunds],
                "Refund id": [visible(refund.id) for refund in refunds],
            }
        ),
        hide_index=True,
    )
    if any(refund.status == "pending" for refund in refunds):
        st.caption("Alma refunds are asynchronous: pending until Alma settles them.")


def _send(app: Services, intent_id: str, cents: int, refundable: int, reason: str) -> None:
    key = f"refund_outcome:{intent_id}"
    st.session_state.pop(f"refund_pending:{intent_id}", None)
    amount = None if cents >= refundable else cents  # all that is left: Stripe refunds the rest exactly
    try:
        refund = actions.refund_intent(
            app, ui_access.acting_person(), RefundRequest(intent_id, amount, reason), ui.SUBMISSIONS
        )
    except GatewayError as error:
        st.session_state[key] = ("error", ui_widgets.gateway_error_text(error, "refund"))
        return
    ui.SUBMISSIONS.renew(actions.REFUND_FORM)
    st.session_state[key] = ("success", f"Refund of {format_eur(refund.amount)} sent ({refund.status}).")
    ui.sync_after_write()


def refund_action(app: Services, intent: AlmaIntent, *, key: str) -> None:
    """The Refund form for people who may act on intents; nothing for the others, a note in live mode."""
    if not ui_access.may(Permission.ACT_ON_INTENTS):
        if intent.status == "succeeded" and not app.settings.mode.can_write:
            st.caption("Live mode is read-only: refunds are made in the Stripe Dashboard.")
        return
    outcome = st.session_state.pop(f"refund_outcome:{intent.id}", None)
    if outcome is not None:
        (st.success if outcome[0] == "success" else st.error)(outcome[1])
    refundable = refundable_cents(app, intent)
    if refundable <= 0:
        return
    with st.expander(f"Refund (up to {format_eur(refundable)})"):
        text = st.text_input(
            "Amount to refund (EUR)",
            value=cents_to_decimal_text(refundable),
            key=f"{key}_amount:{intent.id}",
            help="Full or partial; Alma settles refunds asynchronously.",
        )
        reason = st.selectbox(
            "Reason", REFUND_REASONS, format_func=lambda code: REASON_WORDS[code], key=f"{key}_reason:{intent.id}"
        )
        try:
            cents = parse_eur(text, min_cents=1, max_cents=refundable, range_label="This payment can refund")
        except AmountError as error:
            st.error(str(error))
            return
        pending = f"refund_pending:{intent.id}"
        if st.session_state.get(pending) != (cents, reason):
            if st.button("Refund…", key=f"{key}_ask:{intent.id}"):
                st.session_state[pending] = (cents, reason)
                st.rerun(scope="app")
            return
        st.warning(refund_confirmation(cents, refundable))
        confirm, back = st.columns(2)
        confirm.button(
            f"Confirm refund of {format_eur(cents)}",
            key=f"{key}_confirm:{intent.id}",
            type="primary",
            on_click=_send,
            args=(app, intent.id, cents, refundable, reason),
        )
        back.button("Back", key=f"{key}_back:{intent.id}", on_click=st.session_state.pop, args=(pending, None))
