"""Widgets and tables the pages share: status badges, local times and durations, the failures and capture
tables (ids linking to their detail), Stripe errors in words, and the period picker."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler
from streamlit.delta_generator import DeltaGenerator

from dashboard import analytics
from dashboard.charts import DUE_SOON_TINT, STATUS_COLOURS, URGENCY_COLOURS
from dashboard.domain import STATUSES, TEST_LAB_TAG, outcome
from dashboard.gateway import GatewayError
from dashboard.money import format_eur
from dashboard.plain_text import literal, visible
from dashboard.settings import Settings
from dashboard.ui import AppServices, now


def status_badge(status: str, kind: object = None) -> str:
    """Markdown for a status (and its failure kind) as a coloured badge in words (domain.outcome), the API
    status after it as code. A status Stripe may add later is not put inside the badge's Markdown. `kind` may be a
    frame's missing value."""
    label = outcome(status, None if pd.isna(kind) else str(kind))
    if status not in STATUSES:
        return f":{STATUS_COLOURS[label].badge}-badge[{label}] ({literal(status)})"
    return f":{STATUS_COLOURS[label].badge}-badge[{label}] `{status}`"


def plain_cells(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`frame` with outside text in `columns` made visible (no bidi trick, one line) for a dataframe's cells."""
    return frame.assign(**{column: frame[column].map(visible, na_action="ignore") for column in columns})


def local_datetime(seconds: int | None, settings: Settings) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(int(seconds), ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def local_date(seconds: int, settings: Settings) -> date:
    return datetime.fromtimestamp(int(seconds), ZoneInfo(settings.timezone)).date()


def duration_text(seconds: int | None) -> str:
    """'1 h 05 min', '12 min 30 s', '45 s': precise enough for a countdown, short enough for a table."""
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def time_column(label: str, settings: Settings, *, seconds: bool = False) -> Any:
    """A table's time column, its heading naming the zone its times are in ("Created (Europe/Paris)")."""
    return st.column_config.DatetimeColumn(
        f"{label} ({settings.timezone})",
        format="YYYY-MM-DD HH:mm:ss" if seconds else "YYYY-MM-DD HH:mm",
        help=f"Local time in {settings.timezone}",
    )


# A relative link resolves next to whichever page shows it, so it survives a server.baseUrlPath.
INTENT_DETAIL_LINK = "intents?intent="
INTENTS_PAGE = "app_pages/intents.py"
INTENT_LINK_COLUMN = st.column_config.LinkColumn(
    "Intent",
    display_text=rf"{re.escape(INTENT_DETAIL_LINK)}(.+)",
    help="Opens the intent's detail",
)

_FAILURE_COLUMNS: dict[str, Any] = {  # st.column_config objects, or a plain label
    "updated_at": "When",  # named with its zone where drawn (time_column)
    "id": INTENT_LINK_COLUMN,
    "outcome": "Status",
    "failure_kind": st.column_config.TextColumn("Kind", width="small"),
    "amount": st.column_config.TextColumn("Amount", width="small"),
    "waited": st.column_config.TextColumn("Waited", help="From the Alma redirect to the end", width="small"),
    # No fixed width: the column fits its text (a "large" one cut Stripe's expiry message mid-word).
    "reason": st.column_config.TextColumn("Reason"),
    "error_code": st.column_config.TextColumn("Code", width="medium"),
}


def failures_table(failures: pd.DataFrame, columns: Sequence[str], settings: Settings, key: str) -> None:
    """Expired or declined intents (analytics.recent_failures / recently_expired / recent_declines rows):
    EUR amounts, local times, how long the customer waited when known, and each id linking to its detail.
    The frame keeps the plain `id`; the link column is drawn in its place."""
    shown = plain_cells(failures, [c for c in ("reason", "error_code") if c in failures]).assign(
        amount=failures["amount"].map(format_eur),
        updated_at=analytics.to_local(failures["updated_at"], settings.timezone),
        detail=INTENT_DETAIL_LINK + failures["id"],
    )
    if "waited_seconds" in failures:
        shown = shown.assign(waited=failures["waited_seconds"].map(duration_text))
    drawn = {"detail" if column == "id" else column: _FAILURE_COLUMNS[column] for column in columns}
    drawn["updated_at"] = time_column("When", settings, seconds=True)
    intent_rows(shown, failures["id"], key, column_order=list(drawn), column_config=drawn)


def intent_rows(shown: pd.DataFrame | Styler, ids: pd.Series, key: str, **table: Any) -> None:
    """A table of intents (`ids`, one a row) whose selected row opens that intent's detail in this tab: one
    click on the row's box. The Intent column's link opens it in a new tab instead."""
    event = st.dataframe(
        shown, key=key, hide_index=True, placeholder="—", on_select="rerun", selection_mode="single-row", **table
    )
    if rows := event.selection.rows:
        st.switch_page(INTENTS_PAGE, query_params={"intent": str(ids.iloc[rows[0]])})


_CAPTURE_COLUMNS = {
    "detail": INTENT_LINK_COLUMN,
    "capturable": st.column_config.TextColumn("Capturable", width="small"),
    "installments": st.column_config.NumberColumn("Installments", width="small"),
    "authorized_at": "Authorised",  # named with its zone where drawn (time_column)
    "capture_deadline": "Capture by",
    "left": st.column_config.TextColumn(
        "Time left", width="small", help="Not captured by then, Stripe cancels it and the customer is not charged"
    ),
}


DUE_SOON_MARK = "⚠ "  # the time left of a capture due soon: said in text too, not by colour alone


def capture_table(held: pd.DataFrame, settings: Settings) -> None:
    """analytics.awaiting_capture rows: what is held, and until when it can still be captured; the ones due
    soon (first, as the rows come soonest deadline first) tinted and marked."""
    left = held["seconds_to_deadline"].map(duration_text)
    shown = held.assign(
        detail=INTENT_DETAIL_LINK + held["id"],
        capturable=held["amount_capturable"].map(format_eur),
        authorized_at=analytics.to_local(held["authorized_at"], settings.timezone),
        capture_deadline=analytics.to_local(held["capture_deadline"], settings.timezone),
        left=left.where(~held["due_soon"], DUE_SOON_MARK + left),
    )
    drawn = {
        **_CAPTURE_COLUMNS,
        "authorized_at": time_column("Authorised", settings),
        "capture_deadline": time_column("Capture by", settings),
    }
    tinted = shown.style.apply(
        lambda row: [f"background-color: {DUE_SOON_TINT}" if row["due_soon"] else ""] * len(row), axis=1
    )
    intent_rows(tinted, held["id"], "capture_table", column_order=list(drawn), column_config=drawn)


def countdown_styles() -> None:
    """st.progress has no colour of its own: CSS gives a countdown bar its urgency's colour through the key
    of the container around it (see countdown_card). Our own constant CSS, no outside text."""
    rules = "".join(
        f'div[class*="st-key-countdown-{urgency}-"] [data-testid="stProgressBarTrack"] > div'
        f" {{ background-color: {colour}; }}"
        for urgency, colour in URGENCY_COLOURS.items()
    )
    st.html(f"<style>{rules}</style>")


def countdown_card(urgency: str | None, intent_id: str) -> DeltaGenerator:
    """A bordered card whose countdown bar takes `urgency`'s colour (countdown_styles)."""
    return st.container(border=True, key=f"countdown-{urgency or 'unknown'}-{intent_id}")


def gateway_error_text(error: GatewayError, doing: str) -> str:
    """Stripe's code and message for the user, never a traceback."""
    code = f" ({literal(error.code)})" if error.code else ""
    return f"Could not {doing}{code}: {literal(error.message)}"


def show_gateway_error(error: GatewayError, doing: str) -> None:
    st.error(gateway_error_text(error, doing))


def include_test_toggle() -> bool:
    """Finance figures leave the intents Test lab made out unless this is on (its state is in the URL)."""
    return st.toggle(
        "Include Test lab intents",
        key="include_test",
        bind="query-params",
        help=f"Test lab tags what it creates ({'='.join(TEST_LAB_TAG)} in metadata). Those are test orders, "
        "not revenue: the figures leave them out unless this is on.",
    )


def left_out_caption(left_out: int) -> None:
    """How many Test lab intents the figures leave out, so the toggle is never a silent filter."""
    if left_out:
        st.caption(f"{left_out:,} Test lab intent{'s' if left_out != 1 else ''} left out of these figures.")


CARRIED_PERIOD = "carried_period"


def period_picker(key: str, default: str, app: AppServices) -> Callable[[int], analytics.Period] | None:
    """The period widgets (24 h … 90 d, Custom dates). Returns bounds as a function of "now", so a
    self-refreshing fragment moves a rolling period forward; None while a custom range is half picked."""
    # One period for Overview and Intents, in the URL (`?period=7 d`): a view can be shared, and moving between
    # the two keeps it (the last choice is carried in the session, as a page's widgets go when it is left).
    carried = st.session_state.get(CARRIED_PERIOD, default)
    choice = st.segmented_control(
        "Period", analytics.PERIOD_CHOICES, default=carried, required=True, key="period", bind="query-params"
    )
    st.session_state[CARRIED_PERIOD] = choice
    custom = None
    if choice == "Custom":
        today = local_date(now(app), app.settings)
        picked = st.date_input("From – to", value=(today - timedelta(days=6), today), key=f"{key}_custom")
        if len(picked) != 2:
            st.caption("Pick a start and an end date.")
            return None
        custom = (picked[0], picked[1])
    return partial(_period_bounds, choice, custom=custom, tz=app.settings.timezone)


def _period_bounds(choice: str, now: int, *, custom: tuple[date, date] | None, tz: str) -> analytics.Period:
    """A rolling period moves a minute at a time: it ends after the current minute (nothing is created later
    yet) and starts its length before, so every rerun within a minute asks the store the same question and
    the cached answer serves (a period's figures at a million intents take the database a good part of a
    second)."""
    return analytics.period_bounds(choice, now // 60 * 60 + 59, custom, tz)
