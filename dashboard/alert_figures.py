"""The figures the alert rules read, asked of the store with queries bounded by what the rules need (the intents
sent to Alma within the failure window, the authorisations due within the horizon, the refunds that failed
within theirs), never the whole history.

The queries are the store's (IntentStore.failure_counts, captures_due; AlertLog.failed_refunds), the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from dashboard.alerts import AlertFigures, DueCapture, FailureFigures
from dashboard.settings import AlertSettings
from dashboard.store import IntentStore
from dashboard.store.alert_log import AlertLog


def failure_figures(store: IntentStore, now: int, settings: AlertSettings) -> FailureFigures:
    return FailureFigures(*store.failure_counts(now - settings.failure_window_seconds, now))


def captures_due(store: IntentStore, now: int, settings: AlertSettings) -> tuple[DueCapture, ...]:
    due = store.captures_due(now + settings.captures_due_seconds)
    return tuple(DueCapture(intent_id, amount, deadline) for intent_id, amount, deadline in due)


def last_success_at(store: IntentStore) -> int | None:
    """The last successful sync: the sync record's, or the sync state's when the record predates it."""
    known = (store.writer_status().last_success_at, store.last_synced_at())
    return max((t for t in known if t is not None), default=None)


def alert_figures(store: IntentStore, log: AlertLog, now: int, settings: AlertSettings) -> AlertFigures:
    return AlertFigures(
        failures=failure_figures(store, now, settings),
        captures_due=captures_due(store, now, settings),
        failed_refunds=tuple(log.failed_refunds(now - settings.refund_failed_seconds)),
        last_sync_success_at=last_success_at(store),
    )
