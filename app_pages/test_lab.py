"""Test lab: QA testers create Alma test intents, open the approve/decline page, cancel or capture them, and
(local mode) move the sandbox clock. Only registered in test and local modes (see streamlit_app.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analytics, ui
from dashboard.domain import CANCELABLE_STATUSES, AlmaIntent
from dashboard.form_input import MetadataError, parse_amount, parse_metadata
from dashboard.gateway import CreatedIntent, CreateIntentRequest, GatewayError, submission_idempotency_key
from dashboard.intent_frame import frame_from_intents
from dashboard.money import cents_to_decimal_text, format_eur

app = ui.services()
settings = app.settings
if not settings.mode.can_write:  # the page is not registered in live mode; this guards a direct import
    st.stop()

# Intents created here carry this pair, so "recent test intents" are ours, not the checkout's.
TEST_LAB_TAG = ("alma_ops_source", "test_lab")
RECENT_LIMIT = 10
CLOCK_STEPS = {"+1 min": 60, "+15 min": 15 * 60, "+61 min": 61 * 60}

answers: dict[str, AlmaIntent] = st.session_state.setdefault("lab_answers", {})  # id -> gateway's AlmaIntent
notices: dict[str, tuple[str, str]] = st.session_state.setdefault("lab_notices", {})  # id -> (kind, text)


def _remember(intent_id: str, kind: str, text: str, intent: AlmaIntent | None = None) -> None:
    notices[intent_id] = (kind, text)
    if intent is not None:
        answers[intent_id] = intent


def _failed(intent_id: str, error: GatewayError, doing: str) -> None:
    """Stripe keeps an answered request's error against its idempotency key, so the same key would replay
    that error to every retry of this intent and amount for the rest of the session: the next action gets a
    new submission. Safe: Stripe refused the request (and an intent cannot be canceled or captured twice
    anyway). Without an answer (connection lost) the request may
    have gone through, so the key is kept and a retry replays its outcome instead of acting twice. A success
    keeps the key too: a double click replays it."""
    _remember(intent_id, "error", ui.gateway_error_text(error, doing))
    if error.http_status is not None:
        ui.renew_submission("lab_actions")


def _cancel(intent_id: str) -> None:
    key = submission_idempotency_key("cancel", ui.submission_id("lab_actions"), intent_id=intent_id)
    try:
        intent = app.gateway.cancel_intent(intent_id, key)
    except GatewayError as error:
        _failed(intent_id, error, "cancel")
    else:
        _remember(intent_id, "success", f"Canceled — status {intent.status}.", intent)
    ui.sync_after_write()


def _capture(intent_id: str, capturable_cents: int) -> None:
    cents, problem = parse_amount(
        st.session_state[f"capture_amount:{intent_id}"],
        min_cents=1,
        max_cents=capturable_cents,
        range_label="Capturable:",
    )
    if problem:
        _remember(intent_id, "error", problem)
        return
    key = submission_idempotency_key("capture", ui.submission_id("lab_actions"), intent_id=intent_id, amount=cents)
    try:
        intent = app.gateway.capture_intent(intent_id, cents, key)
    except GatewayError as error:
        _failed(intent_id, error, "capture")
    else:
        _remember(
            intent_id, "success", f"Captured {format_eur(intent.amount_received)} — status {intent.status}.", intent
        )
    ui.sync_after_write()


def _create_another() -> None:
    ui.renew_submission("create")
    st.session_state.pop("lab_created", None)


def _advance_clock(seconds: int) -> None:
    assert app.sandbox is not None
    try:
        app.sandbox.advance(seconds)
    except OSError as error:
        st.session_state["lab_clock_problem"] = f"Could not advance the clock. {ui.sandbox_unreachable_text(error)}"
        return
    ui.sync_after_write()


ALMA_PAGE = "the sandbox's Alma page" if app.sandbox is not None else "Alma's test page"
st.caption(f"Create an Alma test intent, then approve or decline it on {ALMA_PAGE}, as a customer would.")

with st.form("create_intent"):
    amount_column, capture_column = st.columns([2, 1])
    amount_text = amount_column.text_input(
        "Amount (EUR)",
        key="lab_amount",
        placeholder="e.g. 120.50",
        help=f"Alma accepts {format_eur(settings.alma_min_cents)} to {format_eur(settings.alma_max_cents)}.",
    )
    amount_slot = amount_column.empty()
    capture_method = capture_column.radio(
        "Capture",
        ("automatic", "manual"),
        horizontal=True,
        key="lab_capture",
        help="Manual: the payment is only authorised; capture it below within 7 days.",
    )
    description = st.text_input("Description (optional)", key="lab_description").strip()
    metadata_text = st.text_area(
        "Metadata (optional)",
        key="lab_metadata",
        placeholder="e.g. order_id=1234\nteam=qa",
        help="One key=value per line.",
    )
    metadata_slot = st.empty()
    submitted = st.form_submit_button("Create test intent", type="primary")

if submitted:
    cents, amount_problem = parse_amount(
        amount_text, min_cents=settings.alma_min_cents, max_cents=settings.alma_max_cents, range_label="Alma accepts"
    )
    if amount_problem:
        amount_slot.error(amount_problem)
    try:
        metadata = parse_metadata(metadata_text)
    except MetadataError as problem:
        metadata_slot.error(str(problem))
        metadata = None
    if cents is not None and metadata is not None:
        fields = {
            "amount": cents,
            "capture_method": capture_method,
            "description": description or None,
            "metadata": metadata,
        }
        key = submission_idempotency_key("create_intent", ui.submission_id("create"), **fields)
        request = CreateIntentRequest(
            **{**fields, "metadata": (*metadata, TEST_LAB_TAG)}, return_url=settings.return_url
        )
        try:
            created = app.gateway.create_alma_intent(request, key)
        except GatewayError as error:
            ui.show_gateway_error(error, "create the intent")
        else:
            previous: CreatedIntent | None = st.session_state.get("lab_created")
            if previous is not None and previous.intent.id == created.intent.id:
                st.info(
                    "This submission was already sent: it created the intent below. "
                    "Use **Create another** for a new one."
                )
            st.session_state["lab_created"] = created
            answers[created.intent.id] = created.intent
            ui.sync_after_write()

created: CreatedIntent | None = st.session_state.get("lab_created")
if created is not None:
    with st.container(border=True):
        # The store's copy once synced: the customer may have approved or failed it since.
        intent = app.store.get_intent(created.intent.id) or created.intent
        st.success(f"Created `{intent.id}` for {format_eur(intent.amount)} — status **{intent.status}**.")
        cols = st.columns(3, vertical_alignment="center")
        if created.redirect_url and intent.status == "requires_action":
            cols[0].link_button("Open approve/decline page", created.redirect_url, type="primary")
        cols[1].page_link("app_pages/intents.py", label="Open in Intents", query_params={"intent": intent.id})
        cols[2].button("Create another", on_click=_create_another)

if app.sandbox is not None:
    st.subheader("Advance sandbox clock")
    if clock_problem := st.session_state.pop("lab_clock_problem", None):
        st.error(clock_problem)
    st.caption(
        f"Sandbox time: {ui.local_datetime(ui.now(app), settings)}. "
        "Alma's window is one hour: +61 min expires every intent still awaiting the customer."
    )
    for column, (label, seconds) in zip(st.columns(len(CLOCK_STEPS)), CLOCK_STEPS.items()):
        column.button(label, key=f"advance:{seconds}", on_click=_advance_clock, args=(seconds,), width="stretch")

st.subheader("Recent test intents")
stored = analytics.filter_intents(ui.intents_frame(), text="=".join(TEST_LAB_TAG))
stored_ids = set(stored["id"])
unsynced = [intent for intent_id, intent in answers.items() if intent_id not in stored_ids]
recent = pd.concat([stored, frame_from_intents(unsynced, settings.auth_window_seconds)], ignore_index=True)
recent = recent.sort_values("created", ascending=False).head(RECENT_LIMIT)
if recent.empty:
    st.caption("No test intents yet.")
for row in recent.itertuples(index=False):
    with st.container(border=True):
        info, actions = st.columns([5, 4])
        info.markdown(f"`{row.id}` · {ui.status_badge(row.status)} · {format_eur(row.amount)}")
        info.caption(
            f"Created {ui.local_datetime(row.created, settings)} · {row.capture_method} capture"
            + (f" · {row.description}" if not pd.isna(row.description) else "")
        )
        buttons = actions.columns([2.2, 1, 1], vertical_alignment="center")
        # The tester may have left the page that created it: the customer's page stays one click away
        # (the intent just created has its link in the card above).
        shown_above = created is not None and row.id == created.intent.id
        if row.status == "requires_action" and not pd.isna(row.redirect_url) and not shown_above:
            buttons[0].link_button("Open approve/decline page", row.redirect_url)
        if row.status in CANCELABLE_STATUSES:
            buttons[1].button("Cancel", key=f"cancel:{row.id}", on_click=_cancel, args=(row.id,))
        buttons[2].page_link("app_pages/intents.py", label="Details", query_params={"intent": row.id})
        if row.status == "requires_capture":
            with actions.form(f"capture:{row.id}", border=False):
                st.text_input(
                    "Amount to capture (EUR)",
                    key=f"capture_amount:{row.id}",
                    value=cents_to_decimal_text(row.amount_capturable),
                )
                st.form_submit_button("Capture", on_click=_capture, args=(row.id, int(row.amount_capturable)))
        if row.id in notices:
            kind, text = notices[row.id]
            (st.success if kind == "success" else st.error)(text)
