"""The figures the alert rules read, asked of the store with queries bounded by what the rules need (the intents
sent to Alma within the failure window, the authorisations due within the horizon), never the whole history.

The SQL is plain and the same for SQLite and PostgreSQL; `:name` parameters.
"""

from __future__ import annotations

from dashboard.alerts import AlertFigures, DueCapture, FailureFigures
from dashboard.settings import AlertSettings
from dashboard.store import IntentStore

_FAILURES_SQL = (
    "SELECT COUNT(*),"
    " COALESCE(SUM(CASE WHEN failure_kind = 'declined' THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN failure_kind = 'expired' THEN 1 ELSE 0 END), 0)"
    " FROM intents WHERE sent_to_alma_at > :since AND sent_to_alma_at <= :now"
)
# amount_capturable is what capturing would still bring in; an intent listed before its charge was known may
# show 0 there, and then its amount is the honest figure.
_CAPTURES_DUE_SQL = (
    "SELECT id, CASE WHEN amount_capturable > 0 THEN amount_capturable ELSE amount END, capture_deadline"
    " FROM intents WHERE status = 'requires_capture' AND capture_deadline <= :horizon"
    " ORDER BY capture_deadline, id"
)


def failure_figures(store: IntentStore, now: int, settings: AlertSettings) -> FailureFigures:
    # The store's connection: the store package is being rewritten, and this module follows it.
    row = store._conn().execute(_FAILURES_SQL, {"since": now - settings.failure_window_seconds, "now": now})
    sent, declined, expired = row.fetchone()
    return FailureFigures(int(sent), int(declined), int(expired))


def captures_due(store: IntentStore, now: int, settings: AlertSettings) -> tuple[DueCapture, ...]:
    rows = store._conn().execute(_CAPTURES_DUE_SQL, {"horizon": now + settings.captures_due_seconds})
    return tuple(DueCapture(str(i), int(amount), int(deadline)) for i, amount, deadline in rows)


def alert_figures(store: IntentStore, now: int, settings: AlertSettings) -> AlertFigures:
    return AlertFigures(
        failures=failure_figures(store, now, settings),
        captures_due=captures_due(store, now, settings),
        failed_refunds=(),  # refunds are not synced yet (the refunds issue): none can have failed
        last_sync_success_at=store.last_synced_at(),
    )
