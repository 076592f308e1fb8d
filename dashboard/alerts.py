"""Alert rules and their notification state machine. Pure: no I/O, no clock reads, no streamlit.

The writer reads the figures the rules need from the store (`dashboard.alert_figures`), evaluates every rule
with `evaluate(figures, now, settings, tz)`, then moves each rule's stored `RuleState` with `step`, which says
whether a notification is due. Delivering it is the notifier's business (`dashboard.notify`); its outcome goes
back through `record_delivery`, so an undelivered notification stays pending and is sent again on the next
evaluation.

Lifecycle of one rule: ok → firing sends one "firing" notification; while it keeps firing, nothing until
`cooldown_seconds` after the last delivered one, then a "reminder"; when it clears, one "resolved".

Thresholds, windows and the cooldown are `settings.AlertSettings` (`[alerts]` in secrets.toml, or
`ALMA_OPS_ALERT_*` environment variables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from dashboard.money import format_eur

if TYPE_CHECKING:  # annotations only: the store reads this module's types, and settings imports the store
    from dashboard.settings import AlertSettings

Rule = Literal["failure_spike", "captures_due", "refund_failed", "data_stale"]
RULES: tuple[Rule, ...] = ("failure_spike", "captures_due", "refund_failed", "data_stale")
RULE_TITLES: dict[Rule, str] = {
    "failure_spike": "Failure spike",
    "captures_due": "Captures due",
    "refund_failed": "Refund failed",
    "data_stale": "Data stale",
}
# The app page (st.Page url_path) that shows what each rule is about; a notification links to it.
RULE_PAGES: dict[Rule, str] = {
    "failure_spike": "expiry_watch",
    "captures_due": "expiry_watch",
    "refund_failed": "intents",
    "data_stale": "alerts",
}
RuleStatus = Literal["ok", "firing"]
NotificationKind = Literal["firing", "reminder", "resolved", "test"]
MAX_DETAIL_LINES = 20  # a chat message listing 300 captures helps nobody; the page lists them all

# -- the figures the rules read ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureFigures:
    """Intents sent to Alma within the failure window, and how many of them ended declined or expired."""

    sent: int
    declined: int
    expired: int

    @property
    def failed(self) -> int:
        return self.declined + self.expired


@dataclass(frozen=True)
class DueCapture:
    intent_id: str
    amount: int  # cents still capturable
    deadline: int  # unix seconds; the authorisation is released after it


@dataclass(frozen=True)
class FailedRefund:
    """A refund whose status turned `failed` (the refunds sync fills these)."""

    refund_id: str
    intent_id: str | None
    amount: int  # cents
    failed_at: int  # unix seconds: when the store learned it failed
    reason: str | None = None  # Stripe's failure_reason


@dataclass(frozen=True)
class AlertFigures:
    failures: FailureFigures
    captures_due: tuple[DueCapture, ...]  # requires_capture with a deadline within the horizon, soonest first
    failed_refunds: tuple[FailedRefund, ...]  # turned failed within the refund window
    last_sync_success_at: int | None  # None: no sync has succeeded yet


# -- rules ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    firing: bool
    count: int  # how many things the alert is about (failed intents, captures, refunds, minutes stale)
    value: str  # the current figure in words, e.g. "8 of 10 failed (80%)"
    threshold: str  # what makes the rule fire, in words
    details: tuple[str, ...] = ()  # one line per thing (capped at MAX_DETAIL_LINES, with a "…and N more")

    @property
    def title(self) -> str:
        return RULE_TITLES[self.rule]


def _local_time(seconds: int, tz: str) -> str:
    return datetime.fromtimestamp(seconds, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _deadline_text(deadline: int, now: int, tz: str) -> str:
    left = deadline - now
    return f"{_local_time(deadline, tz)} " + (
        "(passed)" if left <= 0 else f"(in {left // 3600} h {left // 60 % 60:02d} min)"
    )


def _capped(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_DETAIL_LINES:
        return tuple(lines)
    return (*lines[:MAX_DETAIL_LINES], f"…and {len(lines) - MAX_DETAIL_LINES} more")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def threshold_text(rule: Rule, settings: AlertSettings) -> str:
    """What makes `rule` fire with these settings, in words (notifications and the Alerts page)."""
    if rule == "failure_spike":
        return (
            f"at least {settings.failure_min_intents} intents sent to Alma in {settings.failure_window_seconds // 60}"
            f" min, at least {settings.failure_rate_percent}% of them declined or expired"
        )
    if rule == "captures_due":
        return f"an authorised intent whose capture deadline is within {settings.captures_due_seconds // 3600} h"
    if rule == "refund_failed":
        return f"a refund turned failed in the last {settings.refund_failed_seconds // 3600} h"
    return f"no successful sync for {settings.stale_seconds // 60} min"


def failure_spike(figures: FailureFigures, settings: AlertSettings) -> RuleResult:
    minutes = settings.failure_window_seconds // 60
    enough = figures.sent >= settings.failure_min_intents
    # Integer comparison: failed / sent >= rate / 100 without a float.
    share_reached = figures.sent > 0 and figures.failed * 100 >= settings.failure_rate_percent * figures.sent
    percent = figures.failed * 100 // figures.sent if figures.sent else 0
    return RuleResult(
        rule="failure_spike",
        firing=enough and share_reached,
        count=figures.failed,
        value=f"{figures.failed} of {figures.sent} failed ({percent}%) in the last {minutes} min",
        threshold=threshold_text("failure_spike", settings),
        details=(f"declined: {figures.declined}", f"expired: {figures.expired}") if figures.failed else (),
    )


def captures_due(due: Sequence[DueCapture], now: int, settings: AlertSettings, tz: str) -> RuleResult:
    hours = settings.captures_due_seconds // 3600
    soon = sorted(
        (c for c in due if c.deadline <= now + settings.captures_due_seconds), key=lambda c: (c.deadline, c.intent_id)
    )
    total = sum(c.amount for c in soon)
    lines = [f"{c.intent_id} · {format_eur(c.amount)} · deadline {_deadline_text(c.deadline, now, tz)}" for c in soon]
    return RuleResult(
        rule="captures_due",
        firing=bool(soon),
        count=len(soon),
        value=f"{_plural(len(soon), 'capture')} due within {hours} h ({format_eur(total)})",
        threshold=threshold_text("captures_due", settings),
        details=_capped(lines),
    )


def refund_failed(refunds: Sequence[FailedRefund], now: int, settings: AlertSettings, tz: str) -> RuleResult:
    hours = settings.refund_failed_seconds // 3600
    recent = sorted(
        (r for r in refunds if r.failed_at > now - settings.refund_failed_seconds),
        key=lambda r: (r.failed_at, r.refund_id),
    )
    lines = [
        f"{r.refund_id}"
        + (f" of {r.intent_id}" if r.intent_id else "")
        + f" · {format_eur(r.amount)} · failed {_local_time(r.failed_at, tz)}"
        + (f" · {r.reason}" if r.reason else "")
        for r in recent
    ]
    return RuleResult(
        rule="refund_failed",
        firing=bool(recent),
        count=len(recent),
        value=f"{_plural(len(recent), 'refund')} failed in the last {hours} h",
        threshold=threshold_text("refund_failed", settings),
        details=_capped(lines),
    )


def data_stale(last_success_at: int | None, now: int, settings: AlertSettings, tz: str) -> RuleResult:
    threshold = threshold_text("data_stale", settings)
    if last_success_at is None:
        return RuleResult("data_stale", True, 0, "no sync has succeeded yet", threshold)
    age = max(0, now - last_success_at)
    return RuleResult(
        rule="data_stale",
        firing=age >= settings.stale_seconds,
        count=age // 60,
        value=f"last successful sync {age // 60} min ago ({_local_time(last_success_at, tz)})",
        threshold=threshold,
    )


def evaluate(figures: AlertFigures, now: int, settings: AlertSettings, tz: str) -> tuple[RuleResult, ...]:
    """Every rule, in RULES order."""
    return (
        failure_spike(figures.failures, settings),
        captures_due(figures.captures_due, now, settings, tz),
        refund_failed(figures.failed_refunds, now, settings, tz),
        data_stale(figures.last_sync_success_at, now, settings, tz),
    )


# -- notifications and the state machine ------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    rule: Rule | None  # None: a test notification
    kind: NotificationKind
    title: str
    body: str
    page: str  # url path of the app page that shows what it is about; the notifier turns it into a link


def notification_for(result: RuleResult, kind: NotificationKind, state: RuleState, tz: str) -> Notification:
    heading = {"firing": "", "reminder": "Still firing: ", "resolved": "Resolved: ", "test": "Test: "}[kind]
    since = f"Firing since {_local_time(state.since, tz)}." if state.since is not None and kind == "reminder" else ""
    lines = [f"{result.title}: {result.value}.", f"Fires on: {result.threshold}."]
    if since:
        lines.append(since)
    if kind != "resolved":
        lines.extend(result.details)
    return Notification(
        rule=result.rule,
        kind=kind,
        title=f"Alma Ops — {heading}{result.title}: {result.value}",
        body="\n".join(lines),
        page=RULE_PAGES[result.rule],
    )


def check_notification(now: int, tz: str) -> Notification:
    return Notification(
        rule=None,
        kind="test",
        title="Alma Ops — test notification",
        body=f"Sent from the Alerts page at {_local_time(now, tz)}: alert delivery works.",
        page="alerts",
    )


@dataclass(frozen=True)
class RuleState:
    status: RuleStatus = "ok"
    since: int | None = None  # when the current status began (None: never evaluated)
    last_sent_at: int | None = None  # the last delivered firing or reminder notification; cooldown counts from it
    pending: NotificationKind | None = None  # decided but not delivered yet: sent again on the next evaluation


def next_state(previous: RuleState, result: RuleResult, now: int, cooldown_seconds: int) -> RuleState:
    """The rule's state after this evaluation. Its `pending` is the notification it calls for, which stays
    pending (and is sent again at each evaluation) until `record_delivery` says it went out."""
    if result.firing:
        if previous.status == "ok":
            return RuleState("firing", now, previous.last_sent_at, pending="firing")
        if previous.pending is None and (
            previous.last_sent_at is None or now - previous.last_sent_at >= cooldown_seconds
        ):
            return replace(previous, pending="reminder")
        return previous  # quiet within the cooldown, or still trying to deliver the last one
    if previous.status == "firing":
        # Resolved is sent even when the firing notice never got through: someone should learn it happened.
        return RuleState("ok", now, previous.last_sent_at, pending="resolved")
    return previous if previous.since is not None else replace(previous, since=now)


def step(
    previous: RuleState, result: RuleResult, now: int, cooldown_seconds: int, tz: str
) -> tuple[RuleState, Notification | None]:
    """The rule's next state and the notification to send now (None: stay quiet)."""
    state = next_state(previous, result, now, cooldown_seconds)
    if state.pending is None:
        return state, None
    return state, notification_for(result, state.pending, state, tz)


def record_delivery(state: RuleState, kind: NotificationKind, delivered: bool, now: int) -> RuleState:
    """The state once a notification of `kind` went out (delivered) or failed (unchanged: still pending)."""
    if not delivered or state.pending != kind:
        return state
    if kind in ("firing", "reminder"):
        return replace(state, pending=None, last_sent_at=now)
    return replace(state, pending=None)
