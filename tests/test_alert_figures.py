"""The alert figures asked of a real store (SQLite and PostgreSQL), filled with intents as the sync would save them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dashboard.alert_figures import alert_figures
from dashboard.alerts import DueCapture, FailureFigures, evaluate
from dashboard.domain import CAPTURE_WINDOW_SECONDS, EXPIRED_CODE, FAILED_CODE, AlmaIntent, LastPaymentError
from dashboard.settings import AlertSettings
from dashboard.store import IntentStore, SyncState
from dashboard.store.alert_log import AlertLog

NOW = 1_800_000_000
WINDOW = 3600
HOUR = 3600
SETTINGS = AlertSettings()


def alma(n: int, status: str, **fields: object) -> AlmaIntent:
    return replace(
        AlmaIntent(id=f"pi_{n:03d}", status=status, amount=10_000 + n, currency="eur", created=NOW - 3 * 86_400 + n),
        payment_method_types=("alma",),
        **fields,
    )


def failed(n: int, sent_at: int, code: str = FAILED_CODE, updated_at: int | None = None) -> AlmaIntent:
    error = LastPaymentError(code=code, message="no", type="card_error", payment_method_type="alma")
    return alma(
        n, "requires_payment_method", last_error=error, sent_to_alma_at=sent_at, updated_at=updated_at or sent_at + 60
    )


def authorised(n: int, deadline: int, capturable: int = 0) -> AlmaIntent:
    at = deadline - CAPTURE_WINDOW_SECONDS
    return alma(
        n, "requires_capture", capture_method="manual", authorized_at=at, updated_at=at, amount_capturable=capturable
    )


@pytest.fixture
def log(store: IntentStore) -> AlertLog:
    return AlertLog(store.engine)


def test_failures_count_intents_sent_within_the_window(store: IntentStore, log: AlertLog) -> None:
    store.upsert_intents(
        [
            failed(1, NOW - 10 * 60),
            failed(2, NOW - 20 * 60),
            failed(3, NOW - 59 * 60, EXPIRED_CODE),
            # declined by its code, but only once its window had run out: expired (domain.failure_kind)
            failed(4, NOW - 30 * 60, updated_at=NOW - 30 * 60 + WINDOW),
            alma(5, "requires_action", sent_to_alma_at=NOW - 5 * 60),
            alma(6, "succeeded", sent_to_alma_at=NOW - 40 * 60),
            failed(7, NOW - 61 * 60),  # before the window
            alma(8, "requires_payment_method"),  # never sent to Alma
        ]
    )
    assert alert_figures(store, log, NOW, SETTINGS).failures == FailureFigures(sent=6, declined=2, expired=2)
    narrow = replace(SETTINGS, failure_window_seconds=15 * 60)
    assert alert_figures(store, log, NOW, narrow).failures == FailureFigures(sent=2, declined=1, expired=0)


def test_captures_due_within_the_horizon_soonest_first(store: IntentStore, log: AlertLog) -> None:
    store.upsert_intents(
        [
            authorised(1, NOW + 20 * HOUR, capturable=10_001),
            authorised(2, NOW + 2 * HOUR),  # listed before its charge: capturable unknown, amount stands
            authorised(3, NOW + 30 * HOUR),
            alma(4, "succeeded", capture_method="manual", authorized_at=NOW - 6 * 86_400),
        ]
    )
    assert alert_figures(store, log, NOW, SETTINGS).captures_due == (
        DueCapture("pi_002", 10_002, NOW + 2 * HOUR),
        DueCapture("pi_001", 10_001, NOW + 20 * HOUR),
    )


def test_a_quiet_store_fires_nothing_but_knows_its_last_sync(store: IntentStore, log: AlertLog) -> None:
    store.upsert_intents([alma(1, "succeeded", sent_to_alma_at=NOW - 600), authorised(2, NOW + 3 * 86_400)])
    store.save(state=SyncState(None, NOW - 120, NOW - 120, NOW - 90 * 86_400))
    figures = alert_figures(store, log, NOW, SETTINGS)
    assert figures.last_sync_success_at == NOW - 120
    assert not any(result.firing for result in evaluate(figures, NOW, SETTINGS, "UTC"))
