"""Alerts: each rule with what makes it fire, its figure now and its state; the notifications sent and how their
delivery went; admins can send a test notification. The writer evaluates and sends (dashboard/alerting.py):
this page only reads, apart from the test."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import actions, ui, ui_access, ui_widgets
from dashboard.access import Permission
from dashboard.alerts import RULE_TITLES
from dashboard.gateway import GatewayError
from dashboard.plain_text import literal
from dashboard.settings import URLS_ENV
from dashboard.store.alert_log import NotificationRecord

ui_access.require(Permission.VIEW)  # again here: the navigation alone is not the guard
app = ui.services()
settings = app.settings
HISTORY_ROWS = 200
RULE_NAMES: dict[str, str] = dict(RULE_TITLES)
OUTCOME_WORDS = {
    "sending": "sending…",
    "delivered": "delivered",
    "failed": "failed",
    "interrupted": "interrupted: may not have gone out",
    "not_sent": "not sent",
}


def outcome_text(record: NotificationRecord) -> str:
    words = OUTCOME_WORDS.get(record.outcome, record.outcome)
    owed = record.outcome == "failed" and record.rule is not None  # a test is not sent again
    return words + (": sent again at the next evaluation" if owed else "")


now = ui.now(app)
results = app.alerts.current(now)
stored = app.alerts.log.states()


def state_text(rule: str, firing_now: bool) -> str:
    held = stored.get(rule)
    if held is None or held.state.since is None:
        return "firing (not evaluated yet)" if firing_now else "ok"
    status = held.state.status
    since = ui_widgets.local_datetime(held.state.since, settings)
    text = f"firing since {since}" if status == "firing" else "ok"
    if held.state.pending:
        text += f" · {held.state.pending} notification owed"
    return text


st.dataframe(
    pd.DataFrame(
        {
            "rule": [RULE_TITLES[r.rule] for r in results],
            "fires_on": [r.threshold for r in results],
            "now": [r.value for r in results],
            "state": [state_text(r.rule, r.firing) for r in results],
        }
    ),
    hide_index=True,
    column_config={
        "rule": st.column_config.TextColumn("Rule", width="small"),
        "fires_on": st.column_config.TextColumn("Fires on"),
        "now": st.column_config.TextColumn("Now"),
        "state": st.column_config.TextColumn("State"),
    },
)
st.caption(
    f"As of {ui_widgets.local_datetime(now, settings)}. The sync evaluates the rules after each sync and notifies"
    f" once when a rule starts firing, again after {settings.alerts.cooldown_seconds // 3600} h if it still is,"
    " and once when it clears."
)
if targets := app.alerts.targets:
    st.caption("Notifications go to: " + ", ".join(literal(masked) for _, masked in targets))
else:
    st.info(f"No {URLS_ENV} configured: notifications are listed below but sent nowhere.")

if ui_access.may(Permission.TEST_ALERTS) and st.button("Send a test notification", key="send_test_notification"):
    try:
        record = actions.send_test_notification(app, ui_access.acting_person(), ui.SUBMISSIONS, now)
    except GatewayError as error:  # refused (actions.ActionRefused)
        ui_widgets.show_gateway_error(error, "send a test notification")
    else:
        if record.outcome == "delivered":
            st.success(f"Test notification {record.detail}.")  # our words and a count, no URL
        else:
            st.error(f"Test notification {outcome_text(record)}: {literal(record.detail)}")

st.subheader("Notifications")
history = app.alerts.log.history(HISTORY_ROWS)
if not history:
    st.caption("No notification yet.")
else:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime([h.created_at for h in history], unit="s", utc=True),
            "rule": [RULE_NAMES.get(h.rule, h.rule) if h.rule else "Test" for h in history],
            "kind": [h.kind for h in history],
            "title": [h.title for h in history],
            "outcome": [outcome_text(h) for h in history],
            "attempts": [h.attempts for h in history],
            "detail": [h.detail for h in history],
        }
    )
    frame = frame.assign(at=frame["at"].dt.tz_convert(settings.timezone))
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "at": ui_widgets.time_column("When", settings, seconds=True),
            "rule": st.column_config.TextColumn("Rule", width="small"),
            "kind": st.column_config.TextColumn("Kind", width="small"),
            "title": st.column_config.TextColumn("Notification"),
            "outcome": st.column_config.TextColumn("Delivery"),
            "attempts": st.column_config.NumberColumn("Attempts", width="small"),
            "detail": st.column_config.TextColumn("Detail"),
        },
    )
