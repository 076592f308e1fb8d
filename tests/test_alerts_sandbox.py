"""The issue's "done when", end to end: the sandbox over HTTP, the sync as the one writer evaluating the rules
after each sync, a real store (SQLite and PostgreSQL), and apprise posting to a local JSON receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import stripe

from dashboard.alerting import AlertService
from dashboard.domain import CAPTURE_WINDOW_SECONDS
from dashboard.gateway import (
    CaptureMethod,
    CreatedIntent,
    CreateIntentRequest,
    GatewayError,
    StripeGateway,
    submission_idempotency_key,
)
from dashboard.local_sandbox import LocalSandbox
from dashboard.notify import Notifier
from dashboard.settings import AlertSettings
from dashboard.store import IntentStore
from dashboard.store.alert_log import AlertLog
from dashboard.sync import AlmaSync
from tests.conftest import TEST_KEY, answer_alma_page
from tests.json_receiver import JsonReceiver

PUBLIC = "http://localhost:8501"


@pytest.fixture
def syncer(
    gateway: StripeGateway, store: IntentStore, sandbox: LocalSandbox, json_receiver: JsonReceiver
) -> Iterator[AlmaSync]:
    notifier = Notifier((json_receiver.url(),), PUBLIC)
    alerts = AlertService(store, AlertLog(store.engine), AlertSettings(), "Europe/Paris", notifier)
    yield AlmaSync(gateway, store, sandbox, alerts=alerts)
    alerts.close()


def create(gateway: StripeGateway, amount: int, capture_method: CaptureMethod = "automatic") -> CreatedIntent:
    request = CreateIntentRequest(amount, capture_method, None, (), PUBLIC + "/return")
    return gateway.create_alma_intent(request, submission_idempotency_key("alerts-test", os.urandom(8).hex()))


def titles(receiver: JsonReceiver) -> list[str]:
    return [got.title for got in receiver.received]


def test_eight_of_ten_declined_fire_one_failure_spike_then_resolve(
    syncer: AlmaSync, gateway: StripeGateway, sandbox: LocalSandbox, json_receiver: JsonReceiver
) -> None:
    syncer.sync_once()
    fresh = [create(gateway, 6_000 + n) for n in range(10)]
    for created in fresh[:8]:
        answer_alma_page(created.redirect_url or "", "fail")

    syncer.sync_once()
    assert titles(json_receiver) == ["Alma Ops — Failure spike: 8 of 10 failed (80%) in the last 60 min"]
    assert json_receiver.received[0].message.endswith(f"Open: {PUBLIC}/expiry_watch")

    syncer.sync_once()
    assert len(json_receiver.received) == 1  # still firing: quiet

    sandbox.advance(61 * 60)  # the two left waiting expire; the hour they were sent in is over
    syncer.sync_once()
    assert titles(json_receiver)[1:] == ["Alma Ops — Resolved: Failure spike: 0 of 0 failed (0%) in the last 60 min"]


def test_an_authorisation_twelve_hours_from_its_deadline_is_named_once(
    syncer: AlmaSync, gateway: StripeGateway, sandbox: LocalSandbox, json_receiver: JsonReceiver
) -> None:
    held = create(gateway, 21_000, "manual")
    answer_alma_page(held.redirect_url or "", "authorize")
    syncer.sync_once()
    assert json_receiver.received == []

    sandbox.advance(CAPTURE_WINDOW_SECONDS - 12 * 3600)
    syncer.sync_once()
    syncer.sync_once()

    [got] = json_receiver.received
    assert got.title == "Alma Ops — Captures due: 1 capture due within 24 h (€210.00)"
    assert f"{held.intent.id} · €210.00 · deadline" in got.message
    assert "(in 11 h 5" in got.message or "(in 12 h 00 min)" in got.message, got.message


def test_a_quiet_account_sends_nothing(
    syncer: AlmaSync, gateway: StripeGateway, json_receiver: JsonReceiver, store: IntentStore
) -> None:
    for n in range(6):
        paid = create(gateway, 7_000 + n)
        answer_alma_page(paid.redirect_url or "", "authorize")
    syncer.sync_once()
    syncer.sync_once()
    assert json_receiver.received == []
    assert syncer.alerts.log.history(10) == []


def test_a_failed_delivery_is_retried_at_the_next_sync_and_never_raised(
    syncer: AlmaSync, gateway: StripeGateway, json_receiver: JsonReceiver, store: IntentStore
) -> None:
    for n in range(5):
        answer_alma_page(create(gateway, 6_000 + n).redirect_url or "", "fail")
    json_receiver.status = 500
    result = syncer.sync_once()  # the sync itself succeeds
    assert result.kind == "full" and json_receiver.received == []
    [record] = syncer.alerts.log.history(5)
    assert record.outcome == "failed"

    json_receiver.status = 200
    syncer.sync_once()
    assert titles(json_receiver) == ["Alma Ops — Failure spike: 5 of 5 failed (100%) in the last 60 min"]
    syncer.sync_once()
    assert len(json_receiver.received) == 1
    [record] = syncer.alerts.log.history(5)
    assert (record.outcome, record.attempts) == ("delivered", 2)


def test_a_refund_that_fails_at_alma_is_told_once(
    syncer: AlmaSync, gateway: StripeGateway, sandbox: LocalSandbox, json_receiver: JsonReceiver
) -> None:
    paid = create(gateway, 9_000)
    answer_alma_page(paid.redirect_url or "", "authorize")
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.base_url})
    refund = client.v1.refunds.create({"payment_intent": paid.intent.id, "metadata": {"sandbox_refund": "fail"}})
    syncer.sync_once()
    assert json_receiver.received == []  # pending: Alma has not answered yet

    sandbox.advance(10 * 60)  # Alma answers: the refund failed
    syncer.sync_once()
    syncer.sync_once()

    [got] = json_receiver.received
    assert got.title == "Alma Ops — Refund failed: 1 refund failed in the last 24 h"
    assert f"{refund.id} of {paid.intent.id} · €90.00 · failed" in got.message
    assert got.message.endswith(f"Open: {PUBLIC}/intents")


def test_syncs_that_keep_failing_raise_data_stale_once(
    syncer: AlmaSync, sandbox: LocalSandbox, json_receiver: JsonReceiver
) -> None:
    syncer.sync_once()
    sandbox.advance(11 * 60)
    sandbox.faults(rate=1.0, kinds="500")
    try:
        for _ in range(2):
            with pytest.raises(GatewayError):
                syncer.sync_once()
    finally:
        sandbox.faults(rate=0.0)
    assert [got.title.split(":")[0] for got in json_receiver.received] == ["Alma Ops — Data stale"]

    syncer.sync_once()
    assert json_receiver.received[-1].title.startswith("Alma Ops — Resolved: Data stale: last successful sync 0 min")
