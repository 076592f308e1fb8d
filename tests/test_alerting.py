"""The alert service on a real store (SQLite and PostgreSQL) delivering to a local JSON receiver: each rule fires
once, stays quiet, resolves; a failed delivery is sent again at the next evaluation; restarts, a second
evaluator and a delivery cut short never repeat a notification."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from dashboard.alerting import NOT_CONFIGURED, AlertService
from dashboard.alerts import RuleState, step
from dashboard.domain import (
    CAPTURE_WINDOW_SECONDS,
    FAILED_CODE,
    AlmaIntent,
    BalanceTransaction,
    LastPaymentError,
    Refund,
)
from dashboard.notify import Notifier, target_id
from dashboard.settings import AlertSettings
from dashboard.store import SCHEMA_VERSION, IntentStore, SyncState
from dashboard.store.alert_log import AlertLog, StoredRuleState
from dashboard.sync_loop import WorkerSyncs
from tests.conftest import execute
from tests.json_receiver import JsonReceiver

NOW = 1_800_000_000
HOUR = 3600
WINDOW = 3600
TZ = "Europe/Paris"
PUBLIC = "https://ops.example.com"


@dataclass
class WallClock:
    """The store's own clock (delivery leases): moved by hand."""

    at: int = NOW

    def now(self) -> int:
        return self.at


def alma(n: int, status: str, **fields: object) -> AlmaIntent:
    return replace(
        AlmaIntent(id=f"pi_{n:03d}", status=status, amount=10_000 + n, currency="eur", created=NOW - 86_400 + n),
        payment_method_types=("alma",),
        **fields,
    )


def declined(n: int, sent_at: int) -> AlmaIntent:
    error = LastPaymentError(code=FAILED_CODE, message="no", type="card_error", payment_method_type="alma")
    return alma(n, "requires_payment_method", last_error=error, sent_to_alma_at=sent_at, updated_at=sent_at + 60)


def succeeded(n: int, sent_at: int) -> AlmaIntent:
    return alma(n, "succeeded", sent_to_alma_at=sent_at, updated_at=sent_at + 60)


def synced(store: IntentStore, at: int) -> None:
    store.save(state=SyncState(None, at, at, at - 90 * 86_400))
    store.record_attempt(at, success=True)


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
def stores(database: str, wall: WallClock) -> Iterator[Callable[[], IntentStore]]:
    """Opens the test's database as another process (or a restart) would: a store object of its own."""
    opened: list[IntentStore] = []

    def open_store() -> IntentStore:
        store = IntentStore(database, WINDOW, clock=wall)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def services(json_receiver: JsonReceiver, wall: WallClock) -> Iterator[Callable[..., AlertService]]:
    made: list[AlertService] = []

    def make(store: IntentStore, urls: tuple[str, ...] | None = None, **knobs: int) -> AlertService:
        settings = AlertSettings(**knobs)
        chosen = (json_receiver.url(),) if urls is None else urls
        notifier = Notifier(chosen, PUBLIC) if chosen else None
        service = AlertService(store, AlertLog(store.engine, wall), settings, TZ, notifier)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def titles(receiver: JsonReceiver) -> list[str]:
    return [got.title for got in receiver.received]


def test_a_failure_spike_fires_once_stays_quiet_and_resolves(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    store.upsert_intents(
        [declined(n, NOW - 600 - n) for n in range(8)] + [succeeded(8, NOW - 700), succeeded(9, NOW - 800)]
    )
    synced(store, NOW)
    alerts = services(store)

    sent = alerts.evaluate(NOW)

    assert [(s.rule, s.kind, s.outcome) for s in sent] == [("failure_spike", "firing", "delivered")]
    [got] = json_receiver.received
    assert got.title == "Alma Ops — Failure spike: 8 of 10 failed (80%) in the last 60 min"
    assert "declined: 8" in got.message and got.message.endswith(f"Open: {PUBLIC}/expiry_watch")
    assert alerts.evaluate(NOW + 60) == []  # still firing: quiet within the cooldown
    assert len(json_receiver.received) == 1

    synced(store, NOW + 2 * HOUR)
    resolved = alerts.evaluate(NOW + 2 * HOUR)  # the window moved past them

    assert [(s.rule, s.kind) for s in resolved] == [("failure_spike", "resolved")]
    assert titles(json_receiver)[1] == "Alma Ops — Resolved: Failure spike: 0 of 0 failed (0%) in the last 60 min"
    history = alerts.log.history(10)
    assert [(h.rule, h.kind, h.outcome, h.attempts) for h in history] == [
        ("failure_spike", "resolved", "delivered", 1),
        ("failure_spike", "firing", "delivered", 1),
    ]
    assert alerts.log.states()["failure_spike"].state == RuleState("ok", NOW + 2 * HOUR, NOW, None)


def test_a_reminder_after_the_cooldown(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    deadline = NOW + 12 * HOUR
    store.upsert_intents(
        [
            alma(
                1,
                "requires_capture",
                capture_method="manual",
                authorized_at=deadline - CAPTURE_WINDOW_SECONDS,
            )
        ]
    )
    synced(store, NOW)
    alerts = services(store, cooldown_seconds=HOUR)
    alerts.evaluate(NOW)
    synced(store, NOW + HOUR - 1)
    assert alerts.evaluate(NOW + HOUR - 1) == []
    synced(store, NOW + HOUR)
    assert [s.kind for s in alerts.evaluate(NOW + HOUR)] == ["reminder"]
    assert titles(json_receiver)[1].startswith("Alma Ops — Still firing: Captures due: 1 capture due")


def test_captures_due_names_the_authorisation(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    deadline = NOW + 12 * HOUR
    held = alma(7, "requires_capture", capture_method="manual", authorized_at=deadline - CAPTURE_WINDOW_SECONDS)
    later = alma(8, "requires_capture", capture_method="manual", authorized_at=NOW - HOUR)
    store.upsert_intents([held, later])
    synced(store, NOW)

    sent = services(store).evaluate(NOW)

    assert [(s.rule, s.kind) for s in sent] == [("captures_due", "firing")]
    [got] = json_receiver.received
    assert "pi_007 · €100.07 · deadline" in got.message and "(in 12 h 00 min)" in got.message
    assert "pi_008" not in got.message


def test_a_failed_refund_fires(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    store.upsert_intents([succeeded(1, NOW - 3 * HOUR)])
    refund = Refund("re_1", "pi_001", "ch_1", 4_000, "failed", None, NOW - 2 * HOUR, "expired_or_canceled_card")
    giveback = BalanceTransaction("txn_1", "refund_failure", "re_1", 4_000, 0, 4_000, NOW - 30 * 60)
    store.save(refund_states=[refund], transactions=[giveback])
    synced(store, NOW)

    alerts = services(store)
    sent = alerts.evaluate(NOW)

    assert [(s.rule, s.kind) for s in sent] == [("refund_failed", "firing")]
    assert "re_1 of pi_001 · €40.00 · failed" in json_receiver.received[0].message
    assert alerts.log.failed_refunds(NOW - 20 * 60) == []  # it failed 30 min ago, by its giveback


def test_a_quiet_store_sends_nothing(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    store.upsert_intents([succeeded(n, NOW - 600 - n) for n in range(6)])
    synced(store, NOW)
    alerts = services(store)
    assert alerts.evaluate(NOW) == []
    assert json_receiver.received == [] and alerts.log.history(10) == []
    assert {rule: s.state.status for rule, s in alerts.log.states().items()} == {
        "failure_spike": "ok",
        "captures_due": "ok",
        "refund_failed": "ok",
        "data_stale": "ok",
    }


def test_a_failed_delivery_is_sent_again_only_where_it_failed(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    store.upsert_intents([declined(n, NOW - 600 - n) for n in range(5)])
    synced(store, NOW)
    other = JsonReceiver()
    try:
        alerts = services(store, (json_receiver.url(), other.url()))
        other.status = 500
        [first] = alerts.evaluate(NOW)
        assert first.outcome == "failed" and "1 of 2 accepted" in first.detail
        assert len(json_receiver.received) == 1 and other.received == []
        assert alerts.log.states()["failure_spike"].failed_targets == (target_id(other.url()),)

        other.status = 200
        [again] = alerts.evaluate(NOW + 15)

        assert (again.kind, again.outcome) == ("firing", "delivered")
        assert len(json_receiver.received) == 1 and len(other.received) == 1  # only where it had failed
        [record] = alerts.log.history(10)
        assert (record.outcome, record.attempts) == ("delivered", 2)
        assert alerts.evaluate(NOW + 30) == []
    finally:
        other.close()


def test_a_restart_and_a_second_evaluator_never_repeat(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    first_store = stores()
    first_store.upsert_intents([declined(n, NOW - 600 - n) for n in range(5)])
    synced(first_store, NOW)
    first, second = services(first_store), services(stores())
    seen_by_second = second.log.states()  # read before the first evaluator moves the rows

    assert len(first.evaluate(NOW)) == 1
    # The second read the rows before the first moved them: its change is refused, so it sends nothing.
    stale = seen_by_second.get("failure_spike") or StoredRuleState("failure_spike", RuleState())
    assert second.log.claim(stale, RuleState("firing", NOW, None, "firing"), "x", NOW, None, lease_seconds=60) is None
    assert second.evaluate(NOW + 5) == []
    restarted = services(stores())
    assert restarted.evaluate(NOW + 10) == []
    assert len(json_receiver.received) == 1


def test_a_delivery_cut_short_is_not_sent_again(
    stores: Callable[[], IntentStore],
    services: Callable[..., AlertService],
    json_receiver: JsonReceiver,
    wall: WallClock,
) -> None:
    store = stores()
    store.upsert_intents([declined(n, NOW - 600 - n) for n in range(5)])
    synced(store, NOW)
    alerts = services(store)
    # What a process that died mid-delivery leaves: the claim, and no outcome.
    result = alerts.current(NOW)[0]
    seen = alerts.log.states().get("failure_spike")
    state, note = step(RuleState(), result, NOW, HOUR, TZ)
    held = alerts.log.claim(
        seen or StoredRuleState("failure_spike", RuleState()), state, result.value, NOW, note, lease_seconds=300
    )
    assert held is not None

    assert alerts.evaluate(NOW + 15) == []  # someone is delivering it (its lease runs)
    wall.at += 301
    assert alerts.evaluate(NOW + 30) == []  # its lease ran out: interrupted, not sent again

    assert json_receiver.received == []
    [record] = alerts.log.history(10)
    assert record.outcome == "interrupted"
    assert alerts.log.states()["failure_spike"].state.pending is None


def test_data_stale_raised_by_two_dashboards_is_sent_once(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    synced(store, NOW)
    one, two = services(stores()), services(stores())
    assert one.check_data_stale(NOW + 5 * 60) == two.check_data_stale(NOW + 5 * 60) == []

    sent = one.check_data_stale(NOW + 11 * 60) + two.check_data_stale(NOW + 11 * 60)

    assert [(s.rule, s.kind) for s in sent] == [("data_stale", "firing")]
    assert titles(json_receiver) == ["Alma Ops — Data stale: last successful sync 11 min ago (2027-01-15 09:00 CET)"]
    synced(store, NOW + 12 * 60)
    assert [s.kind for s in services(store).evaluate(NOW + 12 * 60)] == ["resolved"]


def test_without_urls_notifications_are_recorded_not_owed(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService]
) -> None:
    store = stores()
    store.upsert_intents([declined(n, NOW - 600 - n) for n in range(5)])
    synced(store, NOW)
    alerts = services(store, ())
    [sent] = alerts.evaluate(NOW)
    assert (sent.outcome, sent.detail) == ("not_sent", NOT_CONFIGURED)
    assert alerts.log.states()["failure_spike"].state.pending is None
    assert alerts.evaluate(NOW + 15) == []


def test_a_test_notification_is_sent_once_per_submission(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    alerts = services(stores())
    first = alerts.send_test(NOW, "key-1")
    again = alerts.send_test(NOW, "key-1")
    assert first == again and first.outcome == "delivered" and first.kind == "test"
    assert titles(json_receiver) == ["Alma Ops — test notification"]
    json_receiver.status = 500
    assert alerts.send_test(NOW, "key-2").outcome == "failed"


def test_a_store_from_before_alerts_gains_their_tables(database: str) -> None:
    IntentStore(database, WINDOW).close()
    # What version 5 left: no alert tables.
    execute(
        database, "DROP TABLE alert_state", "DROP TABLE alert_notifications", "UPDATE schema_version SET version = 5"
    )
    store = IntentStore(database, WINDOW)
    log = AlertLog(store.engine)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 6
        assert log.states() == {} and log.history(5) == []
    finally:
        store.close()


def test_a_worker_mode_dashboard_raises_data_stale_at_most_once_a_minute(
    stores: Callable[[], IntentStore], services: Callable[..., AlertService], json_receiver: JsonReceiver
) -> None:
    store = stores()
    synced(store, NOW)
    clock = WallClock(NOW + 5 * 60)
    dashboard, alerts = WorkerSyncs(store), services(store)
    dashboard.check_data_stale(alerts, clock)
    assert json_receiver.received == []  # 5 min: fresh enough

    clock.at = NOW + 11 * 60
    dashboard.check_data_stale(alerts, clock)  # within a minute of the last look: not yet
    assert json_receiver.received == []
    WorkerSyncs(store).check_data_stale(services(store), clock)  # another dashboard's first look
    WorkerSyncs(store).check_data_stale(services(store), clock)  # and a third's
    assert titles(json_receiver) == ["Alma Ops — Data stale: last successful sync 11 min ago (2027-01-15 09:00 CET)"]
