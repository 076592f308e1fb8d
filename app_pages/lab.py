"""Test lab: QA testers create Alma test intents, open the approve/decline page, cancel or capture them, and
(local mode) move the sandbox clock. Only registered in test and local modes (see streamlit_app.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import actions, ui, ui_access, ui_refunds, ui_widgets
from dashboard.access import Permission
from dashboard.actions import IntentForm
from dashboard.domain import CANCELABLE_STATUSES, CAPTURE_METHODS, AlmaIntent, failure_kind, is_test_lab_intent
from dashboard.form_input import DESCRIPTION_MAX, MetadataError, parse_amount, parse_description
from dashboard.gateway import CreatedIntent, GatewayError
from dashboard.lab import RECENT_LIMIT, TAG_TEXT, TESTER_MAX_KEYS, lab_metadata, recent_test_intents
from dashboard.money import capture_confirmation, cents_to_decimal_text, format_eur, release_confirmation
from dashboard.plain_text import known_or_literal, literal, web_link
from dashboard.store import IntentFilter

ui_access.require(Permission.TEST_LAB)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings

CLOCK_STEPS = {"+1 min": 60, "+15 min": 15 * 60, "+61 min": 61 * 60}

answers: dict[str, AlmaIntent] = st.session_state.setdefault("lab_answers", {})  # id -> gateway's AlmaIntent
notices: dict[str, tuple[str, str]] = st.session_state.setdefault("lab_notices", {})  # id -> (kind, text)
# Money actions waiting for the user to confirm the amount in words: id -> ("capture" | "cancel", cents).
pending: dict[str, tuple[str, int]] = st.session_state.setdefault("lab_pending", {})


def _remember(intent_id: str, kind: str, text: str, intent: AlmaIntent | None = None) -> None:
    notices[intent_id] = (kind, text)
    if intent is not None:
        answers[intent_id] = intent


def _cancel(intent_id: str) -> None:
    pending.pop(intent_id, None)
    try:
        intent = actions.cancel_intent(app, ui_access.acting_person(), intent_id, ui.SUBMISSIONS)
    except GatewayError as error:
        _remember(intent_id, "error", ui_widgets.gateway_error_text(error, "cancel"))
    else:
        _remember(intent_id, "success", f"Canceled — status {intent.status}.", intent)
    ui.sync_after_write()


def _ask_capture(intent_id: str, capturable_cents: int) -> None:
    """The capture form's amount, checked; sent only once its confirmation (in words) is confirmed."""
    notices.pop(intent_id, None)
    cents, problem = parse_amount(
        st.session_state[f"capture_amount:{intent_id}"],
        min_cents=1,
        max_cents=capturable_cents,
        range_label="Capturable:",
    )
    if problem:
        _remember(intent_id, "error", problem)
        return
    pending[intent_id] = ("capture", cents)


def _ask_cancel(intent_id: str, held_cents: int) -> None:
    """Canceling an authorised intent releases money: confirmed in words first. Otherwise sent at once."""
    notices.pop(intent_id, None)
    if held_cents:
        pending[intent_id] = ("cancel", held_cents)
    else:
        _cancel(intent_id)


def _confirm(intent_id: str) -> None:
    action, cents = pending[intent_id]
    if action == "cancel":
        _cancel(intent_id)
    else:
        _capture(intent_id, cents)


def _capture(intent_id: str, cents: int) -> None:
    pending.pop(intent_id, None)
    try:
        intent = actions.capture_intent(app, ui_access.acting_person(), intent_id, cents, ui.SUBMISSIONS)
    except GatewayError as error:
        _remember(intent_id, "error", ui_widgets.gateway_error_text(error, "capture"))
    else:
        _remember(
            intent_id, "success", f"Captured {format_eur(intent.amount_received)} — status {intent.status}.", intent
        )
    ui.sync_after_write()


def _create_another() -> None:
    ui.SUBMISSIONS.renew(actions.CREATE_FORM)
    st.session_state.pop("lab_created", None)
    st.query_params.pop("created", None)


def _advance_clock(seconds: int) -> None:
    try:
        actions.advance_clock(app, ui_access.acting_person(), seconds)
    except OSError as error:
        st.session_state["lab_clock_problem"] = f"Could not advance the clock. {ui.sandbox_unreachable_text(error)}"
        return
    except GatewayError as error:
        st.session_state["lab_clock_problem"] = ui_widgets.gateway_error_text(error, "advance the clock")
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
    description_text = st.text_input(
        "Description (optional)", key="lab_description", help=f"At most {DESCRIPTION_MAX:,} characters."
    )
    description_slot = st.empty()
    metadata_text = st.text_area(
        "Metadata (optional)",
        key="lab_metadata",
        placeholder="e.g. order_id=1234\nteam=qa",
        help=f"One key=value per line, at most {TESTER_MAX_KEYS} keys; Test lab adds {TAG_TEXT} itself.",
    )
    metadata_slot = st.empty()
    submitted = st.form_submit_button("Create test intent", type="primary")

if submitted:
    cents, amount_problem = parse_amount(
        amount_text, min_cents=settings.alma_min_cents, max_cents=settings.alma_max_cents, range_label="Alma accepts"
    )
    if amount_problem:
        amount_slot.error(amount_problem)
    description, description_problem = parse_description(description_text)
    if description_problem:
        description_slot.error(description_problem)
    try:
        metadata = lab_metadata(metadata_text)
    except MetadataError as problem:
        metadata_slot.error(str(problem))
        metadata = None
    if cents is not None and metadata is not None and not description_problem:
        form = IntentForm(amount=cents, capture_method=capture_method, description=description, metadata=metadata)
        try:
            created = actions.create_test_intent(app, ui_access.acting_person(), form, ui.SUBMISSIONS)
        except GatewayError as error:
            ui_widgets.show_gateway_error(error, "create the intent")
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


def _created() -> tuple[AlmaIntent, str | None] | None:
    """The intent this session created last, and its approve page: the store's copy once synced (the customer
    may have answered since), else the gateway's answer. Its id is in the URL, so a reload keeps the card."""
    created: CreatedIntent | None = st.session_state.get("lab_created")
    if created is not None:
        st.query_params["created"] = created.intent.id
        return (app.store.get_intent(created.intent.id) or created.intent), created.redirect_url
    stored = app.store.get_intent(st.query_params["created"]) if "created" in st.query_params else None
    if stored is None or not is_test_lab_intent(stored.metadata):
        return None
    return stored, stored.redirect_url


@st.fragment(run_every=settings.refresh_seconds)
def created_card() -> None:
    """Follows the intent's status as the sync brings it, without a reload."""
    found = _created()
    if found is None:
        return
    intent, redirect_url = found
    with st.container(border=True):
        badge = ui_widgets.status_badge(intent.status, failure_kind(intent, settings.auth_window_seconds))
        st.success(f"Created {literal(intent.id)} for {format_eur(intent.amount)} — status {badge}.")
        cols = st.columns(3, vertical_alignment="center")
        if (approve_page := web_link(redirect_url)) and intent.status == "requires_action":
            cols[0].link_button("Open approve/decline page", approve_page, type="primary")
        cols[1].page_link("app_pages/intents.py", label="Open in Intents", query_params={"intent": intent.id})
        if cols[2].button("Create another"):
            _create_another()
            st.rerun()  # the whole page: the form starts a new submission


created_card()

if app.sandbox is not None:
    st.subheader("Advance sandbox clock")
    if clock_problem := st.session_state.pop("lab_clock_problem", None):
        st.error(clock_problem)
    sandbox_now = ui.now(app)
    try:
        ahead: int | None = app.sandbox.offset()
    except OSError:  # down: the freshness banner says so
        ahead = None
    st.caption(
        f"Sandbox time: {ui_widgets.local_datetime(sandbox_now, settings)}"
        + (
            ""
            if ahead is None
            else f", {ui_widgets.duration_text(ahead)} ahead of real time"
            if ahead
            else ", real time"
        )
        + ". The sandbox is shared: these buttons move its clock for everyone using it. "
        "Alma's window is one hour: +61 min expires every intent still awaiting the customer. The clock only "
        "moves forward (a step back would undo what happened); to return to real time, start over with "
        "`make reset`."
    )
    for column, (label, seconds) in zip(st.columns(len(CLOCK_STEPS)), CLOCK_STEPS.items(), strict=True):
        column.button(label, key=f"advance:{seconds}", on_click=_advance_clock, args=(seconds,), width="stretch")

st.subheader("Recent test intents")


@st.fragment(run_every=settings.refresh_seconds)
def recent_list() -> None:
    """Follows each intent's status as the sync brings it, without a reload."""
    stored = ui.intents_frame(IntentFilter(only_test=True), limit=RECENT_LIMIT)
    recent = recent_test_intents(stored, answers.values(), settings.auth_window_seconds)
    if recent.empty:
        st.caption("No test intents yet.")
    created = st.session_state.get("lab_created")
    for row in recent.itertuples(index=False):
        recent_card(row, created)


def recent_card(row: Any, created: CreatedIntent | None) -> None:
    with st.container(border=True, key=f"recent-{row.id}"):  # the key names the card in the page (st-key-…)
        info, controls = st.columns([5, 4])
        info.markdown(
            f"{literal(row.id)} · {ui_widgets.status_badge(row.status, row.failure_kind)} · {format_eur(row.amount)}"
        )
        capture_method = known_or_literal(row.capture_method, CAPTURE_METHODS)
        info.caption(
            f"Created {ui_widgets.local_datetime(row.created, settings)} · {capture_method} capture"
            + ("" if pd.isna(row.installments) else f" · {int(row.installments)} installments")
            + (f" · {literal(row.description)}" if not pd.isna(row.description) else "")
        )
        buttons = controls.columns([2.2, 1, 1], vertical_alignment="center")
        # The tester may have left the page that created it: the customer's page stays one click away
        # (the intent just created has its link in the card above).
        shown_above = created is not None and row.id == created.intent.id
        approve_page = None if pd.isna(row.redirect_url) else web_link(row.redirect_url)
        if row.status == "requires_action" and approve_page and not shown_above:
            buttons[0].link_button("Open approve/decline page", approve_page)
        held = int(row.amount_capturable) if row.status == "requires_capture" else 0
        if row.status in CANCELABLE_STATUSES:
            buttons[1].button("Cancel", key=f"cancel:{row.id}", on_click=_ask_cancel, args=(row.id, held))
        buttons[2].page_link("app_pages/intents.py", label="Details", query_params={"intent": row.id})
        if row.status == "requires_capture":
            with controls.form(f"capture:{row.id}", border=False):
                st.text_input(
                    "Amount to capture (EUR)",
                    key=f"capture_amount:{row.id}",
                    value=cents_to_decimal_text(row.amount_capturable),
                )
                st.form_submit_button("Capture", on_click=_ask_capture, args=(row.id, held))
        if row.id in pending and not held:  # captured or canceled meanwhile: nothing left to confirm
            del pending[row.id]
        if row.id in pending:
            action, cents = pending[row.id]
            question = capture_confirmation(cents, held) if action == "capture" else release_confirmation(cents)
            st.warning(question)
            confirm, back = st.columns(2)
            confirm.button(
                "Confirm capture" if action == "capture" else "Confirm cancel",
                key=f"confirm:{row.id}",
                on_click=_confirm,
                args=(row.id,),
                type="primary",
            )
            back.button("Back", key=f"back:{row.id}", on_click=pending.pop, args=(row.id, None))
        if row.id in notices:
            kind, text = notices[row.id]
            (st.success if kind == "success" else st.error)(text)
        if row.status == "succeeded" and (paid := app.store.get_intent(row.id)) is not None:
            # Refunds are Alma's asynchronous kind: pending, then succeeded once the sandbox clock moves on.
            ui_refunds.refund_action(app, paid, key="lab_refund")
            ui_refunds.refunds_table(app, paid, lambda at: ui_widgets.local_datetime(at, settings))


recent_list()
