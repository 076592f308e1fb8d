"""Audit (admin): every write attempt, who made it and how it ended; filtered by who, action, outcome and
period, and exported as CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import audit, ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.audit import AuditFilter
from dashboard.money import format_eur

ui_access.require(Permission.AUDIT)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
TABLE_ROWS = 2_000  # the newest; the CSV holds every matching entry
ANYONE = "Anyone"

top = st.columns([2, 3])
with top[0]:
    who = st.selectbox("Who", [ANYONE, *app.store.audit_people()], key="audit_who")
with top[1]:
    period_of = ui_widgets.period_picker("audit", "7 d", app)
bottom = st.columns(2)
with bottom[0]:
    chosen_actions = st.multiselect("Action", audit.ACTIONS, key="audit_actions", placeholder="Any action")
with bottom[1]:
    outcomes = st.multiselect(
        "Outcome",
        audit.OUTCOME_CHOICES,
        key="audit_outcomes",
        placeholder="Any outcome",
        help="failed: Stripe answered with an error, or did not answer",
    )

period = period_of(audit.CLOCK.now()) if period_of else None  # entries carry UTC wall time
wanted = AuditFilter(
    since=period.start if period else None,
    until=period.end if period else None,
    who=None if who == ANYONE else who,
    actions=tuple(chosen_actions),
    outcomes=tuple(outcomes),
)
entries = app.store.audit_entries(wanted, limit=TABLE_ROWS + 1)
if len(entries) > TABLE_ROWS:
    st.caption(f"The newest {TABLE_ROWS:,} matching entries; the CSV holds all of them.")
else:
    st.caption(f"{len(entries):,} matching {'entry' if len(entries) == 1 else 'entries'}.")
shown = audit.entries_frame(entries[:TABLE_ROWS])
shown = shown.assign(
    when=shown["at"].dt.tz_convert(settings.timezone),
    amount=shown["amount_cents"].map(lambda cents: None if pd.isna(cents) else format_eur(int(cents))),
    intent=(ui_widgets.INTENT_DETAIL_LINK + shown["intent_id"]).astype("string"),
)
st.dataframe(
    shown,
    hide_index=True,
    placeholder="—",
    column_order=["when", "who", "role", "action", "intent", "amount", "outcome", "detail", "idempotency_key"],
    column_config={
        "when": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "who": st.column_config.TextColumn("Who"),
        "role": st.column_config.TextColumn("Role", width="small"),
        "action": st.column_config.TextColumn("Action", width="small"),
        "intent": ui_widgets.INTENT_LINK_COLUMN,
        "amount": st.column_config.TextColumn("Amount", width="small"),
        "outcome": st.column_config.TextColumn("Outcome"),
        "detail": st.column_config.TextColumn("Detail"),
        "idempotency_key": st.column_config.TextColumn("Idempotency key"),
    },
)
st.download_button(
    "Download CSV",
    data=lambda: audit.csv_export(app.store.audit_entries(wanted)),  # built on click, every matching entry
    file_name="alma_ops_audit.csv",
    mime="text/csv",
    on_click="ignore",  # no rerun: one redrawing the button while the file is built loses the download
    disabled=not entries,
)
