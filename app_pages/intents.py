"""Intents: find Alma intents (status, period, amount, text), read one in detail, export what the filters
show. The selected intent lives in the `intent` query parameter, so a detail can be linked to."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import analytics, intent_export, ui, ui_access, ui_intent_actions, ui_refunds, ui_widgets
from dashboard.access import Permission
from dashboard.domain import CAPTURE_METHODS, OUTCOMES, AlmaIntent, capture_deadline, expires_at, failure_kind
from dashboard.form_input import amount_range_problem, parse_amount
from dashboard.intent_frame import metadata_text
from dashboard.money import STRIPE_MAX_AMOUNT_CENTS, format_eur
from dashboard.plain_text import known_or_literal, literal, visible, visible_json, web_link
from dashboard.store import IntentFilter, PageKey, SortColumn

who = ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
# One page of rows at a time, from the database (keyset paging: as fast on page 500 as on page 1); the table is
# as tall as its rows, so a tall screen shows them all. The CSV export always holds every matching row.
PAGE_ROWS = 50
ROW_PX, HEADER_PX = 35, 38  # st.dataframe's default row and header heights
DETAIL_OPEN_ROWS = 10  # with a detail open the table scrolls within 10 rows, so the detail is in sight
# Auto-sizing measures the first rows only: a later "€1,442.00" or "declined" came out cut. Fits "€10,000.00".
NARROW_COLUMN_PX = 96
ORDERS: dict[str, tuple[SortColumn, bool]] = {  # label -> (sort column, descending)
    "Newest first": ("created", True),
    "Oldest first": ("created", False),
    "Largest amount": ("amount", True),
    "Smallest amount": ("amount", False),
}
COLUMNS = {  # table column -> its header; the first six fit 1280 px, the rest are a pick away
    "created_at": "Created",
    "customer_name": "Customer",
    "amount_eur": "Amount",
    "outcome": "Status",
    "reason": "Failure",
    "installments": "Installments",
    "id": "Intent",
    "customer_email": "Email",
    "amount_received_eur": "Received",
    "expires_in": "Expires in",
    "capture_method": "Capture",
    "description": "Description",
    "metadata": "Metadata",
    "stripe": "Stripe",
}
DEFAULT_COLUMNS = list(COLUMNS)[:6]


def amount_bound(label: str, key: str) -> int | None:
    """An optional EUR bound; a message under the field when it is not an amount (the filter is skipped)."""
    text = st.text_input(label, key=key, placeholder="any", bind="query-params")
    if not text.strip():
        return None
    cents, problem = parse_amount(
        text, min_cents=1, max_cents=STRIPE_MAX_AMOUNT_CENTS, range_label="Stripe amounts are"
    )
    if problem:
        st.error(problem)
    return cents


def select_row() -> None:
    """A clicked table row becomes the picked intent (same state as the keyboard picker below)."""
    rows = st.session_state["intents_table"].selection.rows
    if rows:
        st.session_state["intent"] = st.session_state["intents_table_ids"][rows[0]]


def page_start(view: str) -> PageKey | None:
    """Where the shown page starts: the keys of the pages before it are kept per view (filters and order),
    so a changed filter starts again at the first page."""
    if st.session_state.get("intents_view") != view:
        st.session_state["intents_view"], st.session_state["intents_pages"] = view, []
    pages: list[PageKey] = st.session_state["intents_pages"]
    return pages[-1] if pages else None


def turn_page(next_key: PageKey | None) -> None:
    pages: list[PageKey] = st.session_state["intents_pages"]
    if next_key is None:
        pages.pop()
    else:
        pages.append(next_key)


top = st.columns([2, 3])
with top[0]:
    statuses = st.multiselect("Status", OUTCOMES, key="intents_status", placeholder="Any status", bind="query-params")
with top[1]:
    period_of = ui_widgets.period_picker("intents", "90 d", app)
bottom = st.columns([1, 1, 3])
with bottom[0]:
    min_cents = amount_bound("Min EUR", "intents_min")
with bottom[1]:
    max_cents = amount_bound("Max EUR", "intents_max")
    if range_problem := amount_range_problem(min_cents, max_cents):
        st.error(f"{range_problem} The amount filter is off until Max is at least Min.")
        min_cents = max_cents = None
with bottom[2]:
    text = st.text_input(
        "Search", key="intents_text", placeholder="email, name, order id, 120.50, pi_…", bind="query-params"
    )
include_test = ui_widgets.include_test_toggle()

now = ui.now(app)
period = period_of(now) if period_of else None
where = IntentFilter(
    outcomes=tuple(statuses),
    created_gte=period.start if period else None,
    created_lt=period.end if period else None,
    min_cents=min_cents,
    max_cents=max_cents,
    text=text,
    include_test=include_test,
)
order_column, columns_column = st.columns([1, 3])
order = order_column.selectbox("Order", list(ORDERS), key="intents_order", bind="query-params")
shown_columns = columns_column.multiselect(
    "Columns",
    list(COLUMNS),
    default=DEFAULT_COLUMNS,
    format_func=COLUMNS.get,
    key="intents_columns",
    bind="query-params",
    help="The table's columns; the CSV has every field.",
)
sort, descending = ORDERS[order or "Newest first"]
totals = ui.intent_totals(where)
# The view is what the widgets say: a rolling period's bounds move with the clock, the pages stay.
period_widgets = (st.session_state.get("period"), st.session_state.get("intents_custom"))
after = page_start(repr((replace(where, created_gte=None, created_lt=None), period_widgets, sort, descending)))
page = ui.intents_page(where, sort=sort, descending=descending, after=after, limit=PAGE_ROWS)
table = ui_widgets.plain_cells(
    analytics.intents_table(page.rows, now, tz=settings.timezone),
    ("reason", "description", "metadata", "customer_name", "customer_email"),
)
table["expires_in"] = table["expires_in_seconds"].map(ui_widgets.duration_text)
links = table["id"].map(settings.mode.dashboard_url)
if links.notna().any():
    table["stripe"] = links
st.session_state["intents_table_ids"] = list(table["id"])
detail_open = bool(st.session_state.get("intent") or st.query_params.get("intent"))

st.dataframe(
    table,
    key="intents_table",
    on_select=select_row,
    selection_mode="single-row",
    hide_index=True,
    placeholder="—",
    height=HEADER_PX + ROW_PX * max(min(len(table), DETAIL_OPEN_ROWS if detail_open else PAGE_ROWS), 1) + 2,
    column_order=[c for c in shown_columns or DEFAULT_COLUMNS if c in table],
    column_config={
        "id": st.column_config.TextColumn(COLUMNS["id"]),
        "outcome": st.column_config.TextColumn(
            COLUMNS["outcome"],
            help="The API status in words; Expired and Declined are requires_payment_method after a failed attempt",
        ),
        # Exact Decimal EUR: formatted as euros and sorted as numbers (text would put €99 after €1,000).
        "amount_eur": st.column_config.NumberColumn(COLUMNS["amount_eur"], format="euro", width=NARROW_COLUMN_PX),
        "amount_received_eur": st.column_config.NumberColumn(
            COLUMNS["amount_received_eur"], format="euro", width=NARROW_COLUMN_PX
        ),
        "created_at": ui_widgets.time_column(COLUMNS["created_at"], settings, seconds=True),
        "expires_in": st.column_config.TextColumn(COLUMNS["expires_in"], help="Time left on Alma's page"),
        "installments": st.column_config.NumberColumn(COLUMNS["installments"], format="%d"),
        "capture_method": COLUMNS["capture_method"],
        "customer_name": COLUMNS["customer_name"],
        "customer_email": COLUMNS["customer_email"],
        "reason": st.column_config.TextColumn(COLUMNS["reason"], width="medium"),
        "description": COLUMNS["description"],
        "metadata": COLUMNS["metadata"],
        "stripe": st.column_config.LinkColumn(COLUMNS["stripe"], display_text="Open ↗"),
    },
)
summary, paging, download = st.columns([4, 2, 1], vertical_alignment="center")
matches = f"{totals.count:,} intent matches" if totals.count == 1 else f"{totals.count:,} intents match"
first_row = PAGE_ROWS * len(st.session_state["intents_pages"]) + 1
shown = f" (rows {first_row:,}–{first_row + len(table) - 1:,})" if len(table) < totals.count else ""
money = f"gross {format_eur(totals.gross)} · received {format_eur(totals.received)}"
summary.caption(f"{matches} the filters{shown} · {money}.")
with summary:
    if not include_test:
        ui_widgets.left_out_caption(ui.count_intents(replace(where, include_test=True)) - totals.count)
previous_page, next_page = paging.columns(2)
previous_page.button(
    "‹ Previous",
    key="intents_previous",
    on_click=turn_page,
    args=(None,),
    disabled=not st.session_state["intents_pages"],
    width="stretch",
)
next_page.button(
    "Next ›",
    key="intents_next",
    on_click=turn_page,
    args=(page.next_key,),
    disabled=page.next_key is None,
    width="stretch",
)
download.download_button(
    "Download CSV",
    data=lambda: intent_export.intents_csv(app.store, where, settings.timezone),  # built only when clicked
    file_name=intent_export.intents_download_name(statuses, period, settings.timezone),
    mime="text/csv",
    on_click="ignore",
    width="stretch",
    disabled=not totals.count,  # an empty file would only look like a failed export
)

picked = st.selectbox(
    "Intent detail",
    list(table["id"]),
    index=None,
    key="intent",
    bind="query-params",
    accept_new_options=True,
    placeholder="Choose, type or paste an intent id (pi_…)",
    help="Or select a row in the table.",
)


def when(seconds: int | None) -> str:
    return ui_widgets.local_datetime(seconds, settings)


def deadline(seconds: int | None) -> str | None:
    """'2026-11-29 11:37:20 CET (59 min 57 s left)', or None when there is no deadline."""
    return None if seconds is None else f"{when(seconds)} ({ui_widgets.duration_text(seconds - now)} left)"


def as_text(value: str | None) -> str:
    """Text from Stripe or whoever created the intent, as text (see plain_text.literal)."""
    return literal(value) if value else "—"


def fact_lines(facts: dict[str, str | None]) -> str:
    """'**Name:** value' lines; a fact that does not apply to this intent (None) is left out. Values are
    ours (amounts, times) or outside text already passed through `text`."""
    return "  \n".join(f"**{name}:** {value}" for name, value in facts.items() if value is not None)


def show_detail(intent: AlmaIntent) -> None:
    kind = failure_kind(intent, settings.auth_window_seconds)
    reason = as_text(intent.cancellation_reason) if intent.cancellation_reason else "no reason given"
    canceled = f"{when(intent.canceled_at)} ({reason})"
    sections = {
        "Money": {
            "Amount": format_eur(intent.amount),
            "Received": format_eur(intent.amount_received),
            "Capturable": format_eur(intent.amount_capturable),
            "Capture method": known_or_literal(intent.capture_method, CAPTURE_METHODS),
            "Capture deadline": deadline(capture_deadline(intent)),
            "Installments": str(intent.installments or "—"),
            **ui_refunds.money_facts(app, intent),
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
            "Customer": as_text(intent.customer_name),
            "Email": as_text(intent.customer_email),
            "Alma transaction": as_text(intent.alma_transaction_id),
            "Charge": as_text(intent.latest_charge_id),
            "Payment method": as_text(intent.payment_method_id),
            "Method types": as_text(", ".join(intent.payment_method_types)),
            "Description": as_text(intent.description),
            "Metadata": as_text(metadata_text(intent)),
        },
    }
    st.markdown(f"**Status:** {ui_widgets.status_badge(intent.status, kind)}")
    for column, (title, facts) in zip(st.columns(len(sections)), sections.items(), strict=True):
        column.markdown(f"##### {title}")
        column.markdown(fact_lines(facts))
    if intent.last_error is not None:
        st.error(f"Last payment error {as_text(intent.last_error.code)}: {as_text(intent.last_error.message)}")
    buttons = st.columns(3)
    # A tester's tool; in live mode (no one has TEST_LAB there) a real customer's page staff must not act on.
    approve_page = web_link(intent.redirect_url)
    if intent.status == "requires_action" and approve_page and ui_access.may(Permission.TEST_LAB):
        buttons[0].link_button("Open approve/decline page", approve_page)
    if (dashboard_link := settings.mode.dashboard_url(intent.id)) is not None:
        buttons[1].link_button("Open in the Stripe Dashboard", dashboard_link)
    ui_intent_actions.intent_actions(app, who, intent)

    ui_refunds.refund_action(app, intent, key="intents_refund")
    ui_refunds.refunds_table(app, intent, when)

    st.markdown("##### Timeline")
    timeline = app.store.intent_timeline(intent.id)
    st.dataframe(
        pd.DataFrame(
            {
                "When": [when(entry.at) for entry in timeline],
                "What": [visible(entry.label) for entry in timeline],
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
        st.json(visible_json(dict(intent.raw)), expanded=False)


if picked:
    intent_id = picked.strip()
    intent = app.store.get_intent(intent_id)
    if intent is None:
        st.warning(
            f"No Alma intent {as_text(intent_id)} in the store. It keeps the last {settings.lookback_days} days; "
            "an intent made since the last sync appears after the next one (**Sync now** in the sidebar)."
        )
    else:
        with st.container(border=True):
            st.subheader(f"Intent {as_text(intent.id)}")
            show_detail(intent)
