"""Intents: find Alma intents (status, period, amount, text), read one in detail, export what the filters
show. The selected intent lives in the `intent` query parameter, so a detail can be linked to."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import analytics, ui
from dashboard.domain import STATUSES, AlmaIntent, capture_deadline, expires_at, failure_kind
from dashboard.form_input import parse_amount
from dashboard.intent_frame import metadata_text
from dashboard.money import format_eur

app = ui.services()
settings = app.settings
# The browser gets the newest rows only: 100k rows re-sent on every filter change would stall it. The CSV
# export always holds every matching row.
TABLE_ROWS = 5_000
# The picker lists the newest rows; any other id can still be typed or pasted (accept_new_options).
PICKER_OPTIONS = 500
# No upper bound of its own: the filter takes whatever amounts exist.
FILTER_MAX_CENTS = 10**12
# Auto-sizing measures the first rows only: a later "€1,442.00" or "declined" came out cut. Fits "€10,000.00".
NARROW_COLUMN_PX = 96


def amount_bound(label: str, key: str) -> int | None:
    """An optional EUR bound; a message under the field when it is not an amount (the filter is skipped)."""
    text = st.text_input(label, key=key, placeholder="any")
    if not text.strip():
        return None
    cents, problem = parse_amount(text, min_cents=1, max_cents=FILTER_MAX_CENTS, range_label="Enter")
    if problem:
        st.error(problem)
    return cents


def select_row() -> None:
    """A clicked table row becomes the picked intent (same state as the keyboard picker below)."""
    rows = st.session_state["intents_table"].selection.rows
    if rows:
        st.session_state["intent"] = st.session_state["intents_table_ids"][rows[0]]


top = st.columns([2, 3])
with top[0]:
    statuses = st.multiselect("Status", STATUSES, key="intents_status", placeholder="Any status")
with top[1]:
    period_of = ui.period_picker("intents", "90 d", app)
bottom = st.columns([1, 1, 3])
with bottom[0]:
    min_cents = amount_bound("Min EUR", "intents_min")
with bottom[1]:
    max_cents = amount_bound("Max EUR", "intents_max")
with bottom[2]:
    text = st.text_input("Search", key="intents_text", placeholder="id, description, metadata")

now = ui.now(app)
filtered = analytics.filter_intents(
    ui.intents_frame(),
    statuses=statuses,
    period=period_of(now) if period_of else None,
    min_cents=min_cents,
    max_cents=max_cents,
    text=text,
)
table = analytics.intents_table(filtered, now, tz=settings.timezone).head(TABLE_ROWS)
table["expires_in"] = table["expires_in_seconds"].map(ui.duration_text)
links = table["id"].map(app.gateway.dashboard_url)
if links.notna().any():
    table["stripe"] = links
st.session_state["intents_table_ids"] = list(table["id"])

st.dataframe(
    table,
    key="intents_table",
    on_select=select_row,
    selection_mode="single-row",
    hide_index=True,
    placeholder="—",
    column_order=[
        c
        for c in (
            "id",
            "status",
            "failure_kind",
            "amount_eur",
            "amount_received_eur",
            "created_at",
            "expires_in",
            "installments",
            "capture_method",
            "reason",
            "description",
            "metadata",
            "stripe",
        )
        if c in table
    ],
    column_config={
        "id": st.column_config.TextColumn("Intent", pinned=True),
        "status": "Status",
        # Exact Decimal EUR: formatted as euros and sorted as numbers (text would put €99 after €1,000).
        "amount_eur": st.column_config.NumberColumn("Amount", format="euro", width=NARROW_COLUMN_PX),
        "amount_received_eur": st.column_config.NumberColumn("Received", format="euro", width=NARROW_COLUMN_PX),
        "created_at": st.column_config.DatetimeColumn(
            "Created", format="YYYY-MM-DD HH:mm:ss", help=f"Local time ({settings.timezone})"
        ),
        "expires_in": st.column_config.TextColumn("Expires in", help="Time left on Alma's page"),
        "installments": st.column_config.NumberColumn("Installments", format="%d"),
        "capture_method": "Capture",
        "failure_kind": st.column_config.TextColumn("Failure", width=NARROW_COLUMN_PX),
        "reason": st.column_config.TextColumn("Reason", width="medium"),
        "description": "Description",
        "metadata": "Metadata",
        "stripe": st.column_config.LinkColumn("Stripe", display_text="Open ↗"),
    },
)
summary, download = st.columns([4, 1], vertical_alignment="center")
matches = f"{len(filtered):,} intent matches" if len(filtered) == 1 else f"{len(filtered):,} intents match"
shown = f" (showing the newest {len(table):,}; the CSV has them all)" if len(table) < len(filtered) else ""
summary.caption(f"{matches} the filters{shown}.")
download.download_button(
    "Download CSV",
    data=lambda: analytics.csv_export(filtered, tz=settings.timezone),  # built only when clicked
    file_name="alma-intents.csv",
    mime="text/csv",
    on_click="ignore",
    width="stretch",
    disabled=filtered.empty,  # an empty file would only look like a failed export
)

picked = st.selectbox(
    "Intent detail",
    list(table["id"].head(PICKER_OPTIONS)),
    index=None,
    key="intent",
    bind="query-params",
    accept_new_options=True,
    placeholder="Choose, type or paste an intent id (pi_…)",
    help="Or select a row in the table.",
)


def when(seconds: int | None) -> str:
    return ui.local_datetime(seconds, settings)


def deadline(seconds: int | None) -> str | None:
    """'2026-11-29 11:37:20 CET (59 min 57 s left)', or None when there is no deadline."""
    return None if seconds is None else f"{when(seconds)} ({ui.duration_text(seconds - now)} left)"


def code(value: str | None) -> str:
    return f"`{value}`" if value else "—"


def fact_lines(facts: dict[str, str | None]) -> str:
    """'**Name:** value' lines; a fact that does not apply to this intent (None) is left out."""
    return "  \n".join(f"**{name}:** {value}" for name, value in facts.items() if value is not None)


def show_detail(intent: AlmaIntent) -> None:
    kind = failure_kind(intent, settings.auth_window_seconds)
    canceled = f"{when(intent.canceled_at)} ({intent.cancellation_reason or 'no reason given'})"
    sections = {
        "Money": {
            "Amount": format_eur(intent.amount),
            "Received": format_eur(intent.amount_received),
            "Capturable": format_eur(intent.amount_capturable),
            "Capture method": intent.capture_method,
            "Capture deadline": deadline(capture_deadline(intent)),
            "Installments": str(intent.installments or "—"),
        },
        "Timing": {
            "Created": when(intent.created),
            "Sent to Alma": when(intent.sent_to_alma_at),
            "Alma page expires": deadline(expires_at(intent, settings.auth_window_seconds)),
            "Authorised": when(intent.authorized_at),
            "Canceled": canceled if intent.canceled_at else None,
            "Last update": when(intent.updated_at),
        },
        "References": {
            "Alma transaction": code(intent.alma_transaction_id),
            "Charge": code(intent.latest_charge_id),
            "Payment method": code(intent.payment_method_id),
            "Method types": ", ".join(intent.payment_method_types) or "—",
            "Description": intent.description or "—",
            "Metadata": metadata_text(intent) or "—",
        },
    }
    st.markdown(f"**Status:** {ui.status_badge(intent.status)}" + (f" ({kind})" if kind else ""))
    for column, (title, facts) in zip(st.columns(len(sections)), sections.items()):
        column.markdown(f"##### {title}")
        column.markdown(fact_lines(facts))
    if intent.last_error is not None:
        st.error(f"Last payment error `{intent.last_error.code}`: {intent.last_error.message}")
    buttons = st.columns(3)
    # In live mode this is a real customer's payment page: staff must not act on it for them.
    if intent.status == "requires_action" and intent.redirect_url and settings.mode.can_write:
        buttons[0].link_button("Open approve/decline page", intent.redirect_url)
    if (dashboard_link := app.gateway.dashboard_url(intent.id)) is not None:
        buttons[1].link_button("Open in the Stripe Dashboard", dashboard_link)

    st.markdown("##### Timeline")
    timeline = app.store.intent_timeline(intent.id)
    st.dataframe(
        pd.DataFrame(
            {
                "When": [when(entry.at) for entry in timeline],
                "What": [entry.label for entry in timeline],
                "Event": [entry.event_type for entry in timeline],
                "Event id": [entry.event_id for entry in timeline],
            }
        ),
        hide_index=True,
        placeholder="—",
        column_config={"What": st.column_config.TextColumn(width="large")},
    )
    if any(entry.event_id is None for entry in timeline):
        st.caption(
            "A step without an event is known from the intent itself (its event is older than the "
            "sync, or not synced yet)."
        )
    with st.expander("Stripe object (as last synced)"):
        st.json(dict(intent.raw), expanded=False)


if picked:
    intent_id = picked.strip()
    intent = app.store.get_intent(intent_id)
    if intent is None:
        st.warning(f"No Alma intent `{intent_id}` in the store (it keeps the last {settings.lookback_days} days).")
    else:
        with st.container(border=True):
            st.subheader(f"Intent {intent.id}")
            show_detail(intent)
