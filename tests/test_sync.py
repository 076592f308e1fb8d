"""The sync against the sandbox over real HTTP: after any mix of customer actions, clock moves and faults, the
store ends exactly where the sandbox is, with the request budget the benchmark promises."""

from __future__ import annotations

import math
import os
import queue
import random
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import stripe

from dashboard.domain import AlmaIntent, is_alma
from dashboard.gateway import (
    CaptureMethod,
    CreateIntentRequest,
    GatewayUnavailable,
    RefundRequest,
    StripeGateway,
    submission_idempotency_key,
)
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.store import IntentMoney, IntentStore
from dashboard.sync import AlmaSync, SyncResult, listed_state
from tests.conftest import ROOT, TEST_KEY, answer_alma_page, execute

WINDOW = AUTH_WINDOW_SECONDS
DAY = 86_400


@pytest.fixture
def syncer(gateway: StripeGateway, store: IntentStore, sandbox: LocalSandbox) -> AlmaSync:
    return AlmaSync(gateway, store, sandbox, lookback_days=90)


@pytest.fixture
def client(sandbox: LocalSandbox) -> stripe.StripeClient:
    """For what the dashboard never does itself (multi-method intents), as a merchant's checkout would."""
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.base_url})


def create(
    gateway: StripeGateway, key: str, *, capture_method: CaptureMethod = "automatic", amount: int = 12_000
) -> AlmaIntent:
    request = CreateIntentRequest(
        amount,
        capture_method,
        f"order {key}",
        (("order", key),),
        "http://localhost:8501/return",
    )
    return gateway.create_alma_intent(request, submission_idempotency_key("create", key)).intent


def stripe_facts(intent: AlmaIntent) -> AlmaIntent:
    """What Stripe itself says about an intent (sent_to_alma_at/updated_at are learned from events)."""
    return replace(intent, sent_to_alma_at=None, updated_at=None)


def assert_store_equals_sandbox(store: IntentStore, gateway: StripeGateway, *, retrieve: bool = False) -> None:
    listed = {i.id: i for page in gateway.list_intents(0) for i in page if is_alma(i)}
    stored = {i.id: i for i in store.all_intents()}
    assert sorted(stored) == sorted(listed)
    for intent_id, intent in listed.items():
        truth = gateway.retrieve_intent(intent_id) if retrieve else intent
        assert stripe_facts(stored[intent_id]) == stripe_facts(truth), intent_id


def requests_during(sandbox: LocalSandbox, action: Any) -> tuple[Any, int]:
    before = sandbox.request_count()
    result = action()
    return result, sandbox.request_count() - before


class TestFirstSync:
    def test_copies_every_alma_intent_within_budget(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        sandbox.reset(seed_demo=250)
        progress: list[tuple[int, int | None]] = []
        result, requests = requests_during(sandbox, lambda: syncer.sync_once(lambda d, t: progress.append((d, t))))
        assert result.kind == "full" and result.intents_written == 250 == store.count()
        assert requests <= math.ceil(250 / 100) + 3
        assert result.requests == requests
        assert progress[-1] == (250, 250)
        assert [d for d, _ in progress] == sorted(d for d, _ in progress)
        assert all(t is None or t >= d for d, t in progress)
        assert_store_equals_sandbox(store, gateway)
        assert store.last_synced_at() == result.finished_at

    def test_awaiting_intents_know_when_they_expire(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        waiting = create(gateway, "w1")
        sandbox.advance(600)
        syncer.sync_once()
        frame = store.intents_frame().set_index("id")
        sent = frame.loc[waiting.id, "sent_to_alma_at"]
        assert sent == waiting.created  # the requires_action event of a create-and-confirm
        assert frame.loc[waiting.id, "expires_at"] == sent + WINDOW

    def test_listed_failures_know_when_the_customer_was_sent_and_when_an_expiry_happened(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        declined, expired = create(gateway, "declined"), create(gateway, "expired")
        answer_alma_page(declined.redirect_url, "fail")
        sandbox.advance(WINDOW + 600)  # the other one runs out of time, then the first sync lists both
        syncer.sync_once()
        frame = store.intents_frame().set_index("id")
        assert frame.loc[[declined.id, expired.id], "failure_kind"].tolist() == ["declined", "expired"]
        assert frame.loc[[declined.id, expired.id], "sent_to_alma_at"].tolist() == [declined.created, expired.created]
        assert frame.loc[expired.id, "updated_at"] == expired.created + WINDOW  # the expiry instant, not the listing

    def test_last_sync_is_dated_by_the_injected_clock(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore
    ) -> None:
        """The sidebar's "last sync" must agree with the pages' "now": in local mode both are sandbox time."""
        sandbox.advance(10 * DAY)
        for kind in ("full", "refresh"):
            before = sandbox.now()
            result = syncer.sync_once()
            assert result.kind == kind
            assert before <= store.last_synced_at() == result.finished_at <= sandbox.now()
            sandbox.advance(2 * DAY)

    def test_lists_only_the_lookback_window(
        self, sandbox: LocalSandbox, gateway: StripeGateway, store: IntentStore
    ) -> None:
        old = create(gateway, "old")
        sandbox.advance(3 * DAY)
        recent = create(gateway, "recent")
        AlmaSync(gateway, store, sandbox, lookback_days=2).sync_once()
        assert [i.id for i in store.all_intents()] == [recent.id]
        assert old.id != recent.id


class TestDetection:
    def test_multi_method_intents_count_once_alma_is_known(
        self,
        sandbox: LocalSandbox,
        syncer: AlmaSync,
        store: IntentStore,
        gateway: StripeGateway,
        client: stripe.StripeClient,
    ) -> None:
        def multi(n: int) -> Any:
            return client.v1.payment_intents.create(
                {"amount": 9_000 + n, "currency": "eur", "payment_method_types": ["card", "alma"]}
            )

        def confirm_with_alma(intent_id: str) -> Any:
            return client.v1.payment_intents.confirm(
                intent_id, {"payment_method_data": {"type": "alma"}, "return_url": "http://localhost:8501/return"}
            )

        undecided, chosen, paid_later, failed_later = (multi(n) for n in range(4))
        chosen_action = confirm_with_alma(chosen.id)
        syncer.sync_once()
        assert [i.id for i in store.all_intents()] == [chosen.id]  # listing expands the payment method

        answer_alma_page(confirm_with_alma(paid_later.id).next_action.redirect_to_url.url, "authorize")
        answer_alma_page(confirm_with_alma(failed_later.id).next_action.redirect_to_url.url, "fail")
        answer_alma_page(chosen_action.next_action.redirect_to_url.url, "authorize")
        syncer.sync_once()  # events: the charge and the last_payment_error reveal Alma
        assert sorted(i.id for i in store.all_intents()) == sorted([chosen.id, paid_later.id, failed_later.id])
        assert undecided.id not in {i.id for i in store.all_intents()}
        assert_store_equals_sandbox(store, gateway, retrieve=True)


class TestRefresh:
    def test_lifecycle_then_refresh_equals_the_sandbox(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        to_approve, to_decline, to_expire, to_capture, to_cancel = (
            create(gateway, key, capture_method="manual" if key == "capture" else "automatic")
            for key in ("approve", "decline", "expire", "capture", "cancel")
        )
        first = syncer.sync_once()
        assert first.kind == "full" and store.count() == 5

        sandbox.advance(120)
        answer_alma_page(to_approve.redirect_url, "authorize", installments=4)
        answer_alma_page(to_decline.redirect_url, "fail")
        answer_alma_page(to_capture.redirect_url, "authorize", installments=2)
        gateway.cancel_intent(to_cancel.id, submission_idempotency_key("cancel", to_cancel.id))
        sandbox.advance(60)
        gateway.capture_intent(to_capture.id, 8_000, submission_idempotency_key("capture", to_capture.id))
        sandbox.advance(WINDOW)  # to_expire's window runs out
        newcomer = create(gateway, "newcomer")

        result, requests = requests_during(sandbox, syncer.sync_once)
        assert result.kind == "refresh" and result.intents_written == 6
        assert requests <= math.ceil(6 / 100) + 2
        assert_store_equals_sandbox(store, gateway, retrieve=True)

        frame = store.intents_frame().set_index("id")
        assert frame.loc[to_approve.id, "installments"] == 4
        assert (frame.loc[to_capture.id, "amount_received"], frame.loc[to_capture.id, "installments"]) == (8_000, 2)
        assert frame.loc[to_decline.id, "failure_kind"] == "declined"
        assert frame.loc[to_expire.id, "failure_kind"] == "expired"
        assert frame.loc[to_expire.id, "updated_at"] == to_expire.created + WINDOW  # stamped at the expiry
        assert frame.loc[newcomer.id, "sent_to_alma_at"] == newcomer.created
        events = store.intent_events(to_approve.id)
        assert {"payment_intent.requires_action", "payment_intent.succeeded", "charge.succeeded"} <= {
            e.type for e in events
        }
        assert [e.created for e in events] == sorted(e.created for e in events)

        # Running it again changes nothing.
        frame_before = store.intents_frame()
        again, requests = requests_during(sandbox, syncer.sync_once)
        assert (again.kind, again.intents_written, again.events_applied) == ("refresh", 0, 0)
        assert requests <= 2
        assert store.intents_frame().equals(frame_before)

    def test_authorisations_canceled_or_left_past_the_capture_window(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        dropped, forgotten = (create(gateway, key, capture_method="manual") for key in ("dropped", "forgotten"))
        for intent in (dropped, forgotten):
            answer_alma_page(intent.redirect_url, "authorize")
        syncer.sync_once()
        gateway.cancel_intent(dropped.id, submission_idempotency_key("cancel", dropped.id))
        sandbox.advance(8 * DAY)  # Stripe cancels an authorisation not captured within 7 days
        result, requests = requests_during(sandbox, syncer.sync_once)
        assert (result.kind, result.intents_written) == ("refresh", 2) and requests <= 2
        assert_store_equals_sandbox(store, gateway, retrieve=True)
        frame = store.intents_frame().set_index("id")
        assert frame.loc[[dropped.id, forgotten.id], "status"].tolist() == ["canceled", "canceled"]
        assert frame.loc[forgotten.id, "cancellation_reason"] == "automatic"
        assert frame.loc[forgotten.id, "capture_deadline"] is pd.NA
        released = {intent.id: [e.type for e in store.intent_events(intent.id)] for intent in (dropped, forgotten)}
        assert "charge.refunded" in released[dropped.id]  # the held amount goes back to the customer
        assert "charge.expired" in released[forgotten.id]

    def test_nothing_new_costs_at_most_two_requests(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore
    ) -> None:
        sandbox.reset(seed_demo=120)
        syncer.sync_once()
        frame = store.intents_frame()
        result, requests = requests_during(sandbox, syncer.sync_once)
        assert (result.intents_written, result.events_applied) == (0, 0)
        assert requests <= 2
        assert store.intents_frame().equals(frame)

    def test_a_payment_already_applied_does_not_list_the_balance_again(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        syncer.sync_once()
        paid = create(gateway, "paid-once")
        answer_alma_page(paid.redirect_url, "authorize")
        assert syncer.sync_once().intents_written == 1
        assert store.money_of([paid.id])[paid.id].fee > 0  # the balance was listed for the fee
        # The next refresh re-lists the charge in its overlap; its money was already read.
        again, requests = requests_during(sandbox, syncer.sync_once)
        assert (again.intents_written, again.events_applied, requests) == (0, 0, 2)

    def test_out_of_order_and_duplicate_events(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway, tmp_path: Path
    ) -> None:
        start = sandbox.now()
        intent = create(gateway, "ooo")
        sandbox.advance(30)
        answer_alma_page(intent.redirect_url, "authorize", installments=3)
        events = gateway.list_events(start)
        assert len(events) == 4

        in_order = IntentStore(tmp_path / "in_order.sqlite3", WINDOW)
        AlmaSync(gateway, in_order, sandbox).apply_events(events)
        expected = in_order.get_intent(intent.id)
        assert expected is not None and expected.status == "succeeded" and expected.installments == 3
        assert expected.sent_to_alma_at == intent.created

        newest_first = list(reversed(events))
        assert syncer.apply_events(newest_first[:2]) == (1, 2)  # the later half arrives first
        assert syncer.apply_events(newest_first + events) == (1, 2)  # the rest, with duplicates
        assert store.get_intent(intent.id) == expected  # the old events did not undo the newer state
        assert syncer.apply_events(events) == (0, 0)
        assert len(store.intent_events(intent.id)) == 4

    def test_an_event_listed_late_is_applied_once_and_read_back_in_stripes_order(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        start = sandbox.now()
        intent = create(gateway, "late")  # created and requires_action in the same second
        sandbox.advance(30)
        answer_alma_page(intent.redirect_url, "authorize", installments=2)
        events = gateway.list_events(start)
        assert [e.created for e in events[:2]] == [intent.created] * 2
        assert syncer.apply_events(events[1:]) == (1, 3)  # payment_intent.created was not listable yet
        assert syncer.apply_events(events) == (0, 1)  # the next listing has it, among ones already applied
        assert [e.id for e in store.intent_events(intent.id)] == [e.id for e in events]
        stored = store.get_intent(intent.id)
        assert stored is not None and stored.status == "succeeded" and stored.installments == 2

    def test_cursor_older_than_event_retention_relists(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        kept = [create(gateway, f"r{n}") for n in range(3)]
        syncer.sync_once()
        answer_alma_page(kept[0].redirect_url, "authorize")
        sandbox.advance(31 * DAY)  # the others expire meanwhile; their events would be gone from Stripe
        later = create(gateway, "later", capture_method="manual")
        answer_alma_page(later.redirect_url, "authorize")
        result = syncer.sync_once()
        assert result.kind == "relist"
        assert_store_equals_sandbox(store, gateway)
        assert syncer.sync_once().kind == "refresh"


class TestTimeline:
    def test_first_synced_intents_get_their_milestones_and_later_events_join_them(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        held = create(gateway, "held", capture_method="manual")
        sandbox.advance(40)
        answer_alma_page(held.redirect_url, "authorize", installments=3)
        declined = create(gateway, "declined")
        answer_alma_page(declined.redirect_url, "fail")
        sandbox.advance(3_600)
        syncer.sync_once()  # the first sync stores no events for these
        assert store.intent_events(held.id) == []
        timeline = store.intent_timeline(held.id)
        authorised = store.get_intent(held.id)
        assert authorised is not None
        assert [(e.kind, e.at, e.event_id) for e in timeline] == [
            ("created", held.created, None),
            ("sent_to_alma", held.created, None),
            ("authorized", authorised.authorized_at, None),
        ]
        assert timeline[2].label == "Authorised by Alma — 3 installments"
        assert [e.kind for e in store.intent_timeline(declined.id)] == ["created", "sent_to_alma", "declined"]

        sandbox.advance(60)
        gateway.capture_intent(held.id, 9_000, submission_idempotency_key("capture", held.id))
        newcomer = create(gateway, "newcomer")
        sandbox.advance(20)
        answer_alma_page(newcomer.redirect_url, "authorize", installments=4)
        syncer.sync_once()

        timeline = store.intent_timeline(held.id)
        assert [e.kind for e in timeline][:3] == ["created", "sent_to_alma", "authorized"]
        captured = [e for e in timeline if e.kind == "captured"]
        assert len(captured) == 1 and captured[0].event_id is not None  # the event said when
        assert captured[0].label == "Captured €90.00 of €120.00"
        assert [e.at for e in timeline] == sorted(e.at for e in timeline)

        timeline = store.intent_timeline(newcomer.id)  # every step came as an event: one entry each
        assert all(e.event_id is not None for e in timeline)
        assert [e.event_id for e in timeline] == [e.id for e in store.intent_events(newcomer.id)]
        assert [e.kind for e in timeline] == ["created", "sent_to_alma", "authorized", "succeeded"]


def sync_until_done(syncer: AlmaSync, attempts: int = 5) -> SyncResult:
    """What the background loop does: a sync that fails after every retry is simply run again."""
    for _ in range(attempts - 1):
        try:
            return syncer.sync_once()
        except GatewayUnavailable:
            continue
    return syncer.sync_once()


class TestResilience:
    def test_a_vanished_cursor_event_relists_the_window(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        create(gateway, "before")
        syncer.sync_once()
        assert store.writer_status().cursor_lost_at is None
        sandbox.reset()  # e.g. a local sandbox restarted without its state file: the cursor event is gone
        sandbox.advance(5 * DAY)
        newcomer = create(gateway, "after")
        result = syncer.sync_once()
        assert (result.kind, result.intents_written, result.removed) == ("relist", 1, 1)
        assert result.note == "cursor event lost: window relisted"
        assert [i.id for i in store.all_intents()] == [newcomer.id]  # the intent Stripe no longer has is gone
        assert store.writer_status().cursor_lost_at == result.finished_at  # for the sidebar's note
        assert syncer.sync_once().kind == "refresh"  # the relist took a fresh cursor

    def test_full_sync_with_injected_faults_loses_and_doubles_nothing(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        sandbox.reset(seed_demo=1_000)
        # After the cursor and two pages, page 3 meets a 429, a 500 and a lost connection and gets through;
        # page 5 then fails four times over (every retry), which ends that attempt. The next one completes.
        fates = ["ok"] * 3 + ["429", "500", "drop", "ok", "ok"] + ["500"] * 4
        sandbox.faults(script=fates)
        _, requests = requests_during(sandbox, lambda: sync_until_done(syncer))
        assert len(fates) < requests <= len(fates) + math.ceil(1_000 / 100) + 3
        created = [create(gateway, f"fault{n}") for n in range(5)]
        answer_alma_page(created[0].redirect_url, "authorize")
        answer_alma_page(created[1].redirect_url, "fail")
        sandbox.faults(script=["drop"])  # the refresh's first request
        _, requests = requests_during(sandbox, lambda: sync_until_done(syncer))
        assert requests > 1
        assert store.count() == 1_005
        assert_store_equals_sandbox(store, gateway)

    def test_no_client_secret_in_the_database(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        sandbox.reset(seed_demo=50)
        syncer.sync_once()
        intent = create(gateway, "s")
        answer_alma_page(intent.redirect_url, "authorize")
        syncer.sync_once()

        def database_bytes() -> bytes:
            if store.dialect == "sqlite":  # the main file and, while open, its WAL
                files = [p for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)]
                return b"".join(p.read_bytes() for p in files)
            engine = sa.create_engine(store.location.url)  # every row of every table, as text
            with engine.connect() as conn:
                tables = sa.inspect(conn).get_table_names()
                rows = [conn.exec_driver_sql(f"SELECT CAST(t AS text) FROM {table} t").scalars() for table in tables]
                data = "\n".join(text for table_rows in rows for text in table_rows).encode()
            engine.dispose()
            return data

        while_open = database_bytes()
        store.close()
        for data in (while_open, database_bytes()):
            assert intent.id.encode() in data
            assert b"_secret_" not in data and b"client_secret" not in data


def sync_command_env(tmp_path: Path, **env_vars: str) -> tuple[dict[str, str], Path]:
    db = tmp_path / "cli.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "ALMA_OPS_"))}
    env.update(ALMA_OPS_DB=str(db), **env_vars)
    return env, db


def run_sync_command(tmp_path: Path, *args: str, **env_vars: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    env, db = sync_command_env(tmp_path, **env_vars)
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.sync", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return done, db


def test_command_line_once_against_a_shared_sandbox(sandbox: LocalSandbox, tmp_path: Path) -> None:
    sandbox.reset(seed_demo=40)
    sandbox.advance(3 * DAY)  # the sandbox clock, not the machine's, dates the sync in local mode
    done, db = run_sync_command(tmp_path, "--once", ALMA_OPS_SANDBOX_URL=sandbox.base_url)
    assert done.returncode == 0, done.stderr
    assert "full: 40 intents written" in done.stdout
    store = IntentStore(db, WINDOW)
    assert store.count() == 40
    synced_at = store.last_synced_at()
    assert synced_at is not None and synced_at <= sandbox.now() < synced_at + DAY
    again, _ = run_sync_command(tmp_path, "--once", ALMA_OPS_SANDBOX_URL=sandbox.base_url)
    assert "refresh: 0 intents written, 0 events" in again.stdout


def test_command_line_test_mode_key_and_api_base(sandbox: LocalSandbox, gateway: StripeGateway, tmp_path: Path) -> None:
    created = create(gateway, "cli-test-mode")
    done, db = run_sync_command(tmp_path, "--once", STRIPE_SECRET_KEY=TEST_KEY, STRIPE_API_BASE=sandbox.base_url)
    assert done.returncode == 0, done.stderr
    assert "full: 1 intents written" in done.stdout and "mode=test" in done.stdout
    assert TEST_KEY not in done.stdout + done.stderr  # shown masked only
    assert [i.id for i in IntentStore(db, WINDOW).all_intents()] == [created.id]


def test_command_line_every_keeps_syncing_until_stopped(
    sandbox: LocalSandbox, gateway: StripeGateway, tmp_path: Path
) -> None:
    env, db = sync_command_env(tmp_path, ALMA_OPS_SANDBOX_URL=sandbox.base_url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "dashboard.sync", "--every", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in worker.stdout], daemon=True).start()

    def next_result() -> str:
        while not (line := lines.get(timeout=60)).startswith(("full:", "refresh:")):
            pass
        return line

    try:
        assert next_result().startswith("full: 0 intents written")
        newcomer = create(gateway, "while-running")
        while (line := next_result()).startswith("refresh: 0 intents"):
            pass  # a refresh may start before the create lands
        assert line.startswith("refresh: 1 intents written, 2 events")
    finally:
        worker.terminate()  # SIGTERM, as a supervisor stops it
        worker.wait(timeout=30)
    assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""
    assert [i.id for i in IntentStore(db, WINDOW).all_intents()] == [newcomer.id]


def test_command_line_local_mode_needs_a_running_sandbox(tmp_path: Path) -> None:
    """Without ALMA_OPS_SANDBOX_URL a local-mode worker would sync a private sandbox nobody else sees."""
    done, db = run_sync_command(tmp_path, "--once", ALMA_OPS_DEMO_INTENTS="30")
    assert done.returncode == 2
    assert "ALMA_OPS_SANDBOX_URL" in done.stderr and "Traceback" not in done.stderr
    assert not db.exists()


def test_command_line_refuses_a_bad_key(tmp_path: Path) -> None:
    done, _ = run_sync_command(tmp_path, "--once", STRIPE_SECRET_KEY="pk_test_publishable")
    assert done.returncode == 2 and "STRIPE_SECRET_KEY" in done.stderr


# -- one writer, resumable listings, forward-only state, lost cursor, reconcile, quarantine ---------------


def listing_requests(sandbox: LocalSandbox) -> int:
    """GET /v1/payment_intents requests served: the pages of listings."""
    return sandbox.stats().get("GET /v1/payment_intents", 0)


def sync_env(sandbox: LocalSandbox, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "ALMA_OPS_"))}
    env.update(ALMA_OPS_DB=database, ALMA_OPS_SANDBOX_URL=sandbox.base_url)
    return env


def run_sync(
    sandbox: LocalSandbox, database: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m dashboard.sync ARGS` against the sandbox, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "dashboard.sync", *args],
        cwd=ROOT,
        env=sync_env(sandbox, database),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_sync_command(sandbox: LocalSandbox, database: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard.sync", *args],
        cwd=ROOT,
        env=sync_env(sandbox, database),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_line(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIXES)]
    return line


RESULT_PREFIXES = ("full:", "refresh:", "relist:", "reconcile:", "skipped:")


class TestOneWriter:
    def test_a_second_writer_skips_while_the_first_syncs(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway, database: str
    ) -> None:
        sandbox.reset(seed_demo=250)
        other_store = IntentStore(database, WINDOW, role="worker")
        other = AlmaSync(StripeGateway(Settings(), api_base=sandbox.base_url), other_store, sandbox)
        meanwhile: list[tuple[SyncResult, int]] = []

        def after_a_page(done: int, total: int | None) -> None:
            if not meanwhile:  # the first writer is mid-listing: the other one tries now
                meanwhile.append(requests_during(sandbox, other.sync_once))

        first = syncer.sync_once(after_a_page)
        [(skipped, requests)] = meanwhile
        assert (skipped.kind, skipped.requests, requests) == ("skipped", 0, 0)
        assert skipped.note == f"{store.writer_identity} is syncing this store"
        assert first.kind == "full" and store.count() == 250
        assert other.sync_once().kind == "refresh"  # released once the first is done
        status = store.writer_status()
        assert (status.writer, status.last_role, status.last_writer) == (None, "worker", other_store.writer_identity)
        assert status.last_success_at is not None and status.last_error is None
        other_store.close()

    def test_two_sync_commands_at_once_make_one_first_sync(
        self, sandbox: LocalSandbox, gateway: StripeGateway, database: str
    ) -> None:
        sandbox.reset(seed_demo=1_000)
        before = listing_requests(sandbox)
        commands = [start_sync_command(sandbox, database, "--once") for _ in range(2)]
        outputs = [command.communicate(timeout=180) for command in commands]
        assert [command.returncode for command in commands] == [0, 0], outputs
        lines = sorted(result_line(stdout) for stdout, _ in outputs)
        assert lines[0].startswith("full: 1000 intents written"), lines
        # The second found the lock held (skipped), or, had it started after the first ended, refreshed.
        assert lines[1].startswith(("skipped: worker@", "refresh: 0 intents written")), lines
        assert listing_requests(sandbox) - before == 10  # one first sync's worth of pages
        store = IntentStore(database, WINDOW)
        assert store.count() == 1_000
        assert_store_equals_sandbox(store, gateway)
        store.close()


class TestResumableListing:
    def test_a_killed_first_sync_resumes_where_it_stopped(
        self, sandbox: LocalSandbox, gateway: StripeGateway, database: str
    ) -> None:
        sandbox.reset(seed_demo=3_000)
        reader = IntentStore(database, WINDOW)
        before = listing_requests(sandbox)
        command = start_sync_command(sandbox, database, "--once")
        while (saved := reader.listing_progress()) is None or saved.pages < 3:
            assert command.poll() is None, "the first sync ended before it could be killed"
            time.sleep(0.005)
        command.kill()  # SIGKILL: no cleanup, the writer lock is left behind
        command.communicate(timeout=30)
        saved = reader.listing_progress()
        assert saved is not None and 3 <= saved.pages < 30
        assert reader.count() == saved.listed == saved.pages * 100  # every saved page, nothing half-written
        assert 0 < saved.covered_fraction < 1
        killed_after = listing_requests(sandbox) - before

        done = run_sync(sandbox, database, "--once", timeout=180)
        assert done.returncode == 0, done.stderr
        assert f"resuming the full listing after {saved.pages} pages" in done.stdout
        assert result_line(done.stdout).startswith(f"full: {3_000 - saved.listed} intents written")
        assert killed_after + (listing_requests(sandbox) - before - killed_after) <= 30 + 1  # one page repeated at most
        assert reader.listing_progress() is None and reader.count() == 3_000
        assert_store_equals_sandbox(reader, gateway)
        reader.close()

    def test_a_call_that_fails_after_retries_ends_the_attempt_keeping_what_was_saved(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        sandbox.reset(seed_demo=500)
        progress: list[tuple[int, int | None]] = []

        def break_after_two_pages(done: int, total: int | None) -> None:
            progress.append((done, total))
            if done == 200:
                sandbox.faults(1.0, kinds="500")  # every later request fails, retries included

        with pytest.raises(GatewayUnavailable):
            syncer.sync_once(break_after_two_pages)
        sandbox.faults(0)
        assert progress == [(100, None), (200, None)]  # no guessed total while listing
        saved = store.listing_progress()
        assert saved is not None and (saved.pages, saved.listed, store.count()) == (2, 200, 200)
        status = store.writer_status()
        assert status.last_error is not None and status.last_error.startswith("GatewayUnavailable")
        assert status.last_success_at is None and status.writer is None  # the lock was released

        before = listing_requests(sandbox)
        result = syncer.sync_once()
        assert (result.kind, result.intents_written) == ("full", 300)
        assert listing_requests(sandbox) - before == 3  # pages 3 to 5 only
        assert store.count() == 500 and store.listing_progress() is None
        assert store.writer_status().last_error is None
        assert_store_equals_sandbox(store, gateway)


class TestForwardOnly:
    def test_the_same_events_in_any_order_or_twice_give_the_same_store(
        self, sandbox: LocalSandbox, gateway: StripeGateway, store: IntentStore, tmp_path: Path
    ) -> None:
        start = sandbox.now()
        paid, held, declined = (
            create(gateway, "paid"),
            create(gateway, "held", capture_method="manual"),
            create(gateway, "declined"),
        )
        sandbox.advance(20)
        answer_alma_page(paid.redirect_url, "authorize", installments=4)
        answer_alma_page(held.redirect_url, "authorize", installments=2)
        sandbox.advance(20)
        answer_alma_page(declined.redirect_url, "fail")
        gateway.capture_intent(held.id, 7_000, submission_idempotency_key("capture", held.id))
        events = gateway.list_events(start)
        assert len(events) >= 12

        reference_store = IntentStore(tmp_path / "in_order.sqlite3", WINDOW)
        AlmaSync(gateway, reference_store, sandbox).apply_events(events)
        reference = {intent.id: intent for intent in reference_store.all_intents()}
        assert reference[paid.id].installments == 4 and reference[held.id].amount_received == 7_000
        assert reference[declined.id].status == "requires_payment_method"

        syncer = AlmaSync(gateway, store, sandbox)
        shuffled = list(events)
        random.Random(7).shuffle(shuffled)
        for event in shuffled:  # one at a time, in a random order
            syncer.apply_events([event])
        syncer.apply_events(list(reversed(events)))  # all again, newest first
        assert {intent.id: intent for intent in store.all_intents()} == reference
        assert store.intents_frame().equals(reference_store.intents_frame())
        reference_store.close()

    def test_a_listing_never_overwrites_a_newer_applied_event(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        intent = create(gateway, "raced")
        syncer.sync_once()
        stale_listing = next(i for page in gateway.list_intents(0) for i in page if i.id == intent.id)
        listed_at = sandbox.now()
        sandbox.advance(30)
        gateway.cancel_intent(intent.id, submission_idempotency_key("cancel", intent.id))
        syncer.sync_once()  # the cancel event is applied
        canceled = store.get_stored([intent.id])[intent.id]
        assert canceled.intent.status == "canceled"
        # A page listed before the cancel but saved after it (what two writers used to do):
        late = listed_state(stale_listing, canceled, WINDOW, listed_at)
        assert store.save([late]) == 0
        assert store.get_intent(intent.id) == canceled.intent

    def test_the_cursor_never_moves_backwards(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        create(gateway, "one")
        syncer.sync_once()
        create(gateway, "two")
        syncer.sync_once()
        state = store.sync_state()
        assert state is not None and state.cursor_event_id is not None
        older = replace(state, cursor_event_id="evt_older", cursor_created=state.cursor_created - 2_398)
        syncer.apply_events([], state=older)  # a stale writer's cursor
        assert store.sync_state().cursor_event_id == state.cursor_event_id  # type: ignore[union-attr]


class TestReconcile:
    def test_a_reconcile_heals_planted_differences(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway, database: str
    ) -> None:
        sandbox.reset(seed_demo=120)
        syncer.sync_once()
        changed, dropped = store.all_intents()[:2]
        store.upsert_intents([replace(changed, status="canceled", amount=1)])  # drift
        stranger = replace(changed, id="pi_not_at_stripe", raw={})
        store.upsert_intents([stranger])  # a row Stripe does not have
        execute(database, f"DELETE FROM intents WHERE id = '{dropped.id}'")  # a row lost
        result, requests = requests_during(sandbox, syncer.reconcile)
        assert (result.kind, result.intents_written, result.removed) == ("reconcile", 2, 1)
        assert "3 rows healed (1 removed)" in result.summary()
        assert requests == math.ceil(120 / 100) + 2  # the pages, the cursor, and the window's refunds (one list)
        assert store.writer_status().last_reconcile_fixed == 3
        assert_store_equals_sandbox(store, gateway)
        assert syncer.sync_once().kind == "refresh"
        clean, _ = requests_during(sandbox, syncer.reconcile)
        assert (clean.intents_written, clean.removed) == (0, 0)

    def test_a_worker_reconciles_once_a_day(
        self, sandbox: LocalSandbox, gateway: StripeGateway, store: IntentStore
    ) -> None:
        worker = AlmaSync(gateway, store, sandbox, reconcile_every_seconds=DAY)
        assert worker.sync_once().kind == "full"
        assert worker.sync_once().kind == "refresh"
        sandbox.advance(DAY)
        assert worker.sync_once().kind == "reconcile"
        assert worker.sync_once().kind == "refresh"

    def test_command_line_reconcile(self, sandbox: LocalSandbox, database: str) -> None:
        sandbox.reset(seed_demo=30)
        first = run_sync(sandbox, database, "--reconcile")
        assert first.returncode == 0, first.stderr
        assert result_line(first.stdout).startswith("full: 30 intents written")  # an empty store: a first sync
        store = IntentStore(database, WINDOW)
        execute(
            database,
            "UPDATE intents SET status = 'canceled', state_json = replace(state_json, "
            '\'"status":"succeeded"\', \'"status":"canceled"\')',
        )
        again = run_sync(sandbox, database, "--reconcile")
        healed = sum(1 for intent in store.all_intents() if intent.status == "succeeded")
        assert result_line(again.stdout).startswith(f"reconcile: {healed} intents written"), again.stdout
        assert f"{healed} rows healed (0 removed)" in again.stdout and healed > 0
        store.close()


class TestQuarantine:
    def test_an_intent_that_cannot_be_stored_is_quarantined_and_newer_ones_land(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        start = sandbox.now()
        sandbox.advance(1)
        good = create(gateway, "good")
        events = gateway.list_events(start)
        created = events[0]
        # What the sandbox once accepted: an amount no 64-bit column holds (Stripe caps it at 8 digits).
        huge = replace(
            created, id="evt_huge", object_id="pi_huge", object={**created.object, "id": "pi_huge", "amount": 10**30}
        )
        written, applied = syncer.apply_events([replace(huge, created=start), *events])
        assert (written, applied) == (1, len(events) + 1)
        assert store.get_intent(good.id) is not None and store.get_intent("pi_huge") is None
        [held] = store.quarantined()
        assert held.intent_id == "pi_huge" and "amount" in held.reason
        later = create(gateway, "later")
        assert syncer.sync_once().kind == "full"
        assert store.get_intent(later.id) is not None  # the sync goes on


def alma_fee(amount: int) -> int:
    """The sandbox's default Alma fee: 3.50% rounded half up, plus 25 cents."""
    return (amount * 350 + 5_000) // 10_000 + 25


class TestMoney:
    def paid(self, gateway: StripeGateway, key: str) -> AlmaIntent:
        request = CreateIntentRequest(
            10_000,
            "automatic",
            None,
            (("order_id", key),),
            "http://localhost:8501/return",
            f"Client {key}",
            f"{key}@x.fr",
        )
        intent = gateway.create_alma_intent(request, submission_idempotency_key("create", key)).intent
        assert intent.redirect_url is not None
        answer_alma_page(intent.redirect_url, "authorize")
        return intent

    def refund(self, gateway: StripeGateway, intent: AlmaIntent, amount: int) -> None:
        key = submission_idempotency_key("refund", intent.id, amount=amount)
        gateway.create_refund(RefundRequest(intent.id, amount, "requested_by_customer"), key)

    def test_refunds_fees_and_customers_from_a_listing_and_from_events_alike(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        first = self.paid(gateway, "a")
        self.refund(gateway, first, 1_000)
        assert syncer.sync_once().kind == "full"  # a listing: fee expanded, refunds listed
        later = [self.paid(gateway, key) for key in ("b", "c")]
        self.refund(gateway, later[0], 10_000)
        sandbox.advance(301)  # refunds settle
        refresh, requests = requests_during(sandbox, syncer.sync_once)
        assert refresh.kind == "refresh"
        assert requests <= 4  # events (with overlap) and one page of balance transactions: none per intent
        money = store.money_of([first.id, *(i.id for i in later)])
        fee = alma_fee(10_000)
        assert money[first.id] == IntentMoney(fee=fee, net=10_000 - fee - 1_000, refunded=1_000)
        assert money[later[0].id] == IntentMoney(fee=fee, net=-fee, refunded=10_000)
        assert money[later[1].id] == IntentMoney(fee=fee, net=10_000 - fee, refunded=0)
        assert [(r.amount, r.status) for r in store.refunds_of(first.id)] == [(1_000, "succeeded")]
        assert [(r.amount, r.status) for r in store.refunds_of(later[0].id)] == [(10_000, "succeeded")]
        frame = store.intents_frame().set_index("id")
        assert frame.loc[later[1].id, "customer_name"] == "Client c"
        assert frame.loc[first.id, "customer_email"] == "a@x.fr"
        moves = store.money_moves(0, sandbox.now() + 1, include_test=True)
        assert int(moves.amount.sum()) == 30_000 - 11_000 and int(moves.fee.sum()) == 3 * fee
        labels = [entry.label for entry in store.intent_timeline(later[0].id)]
        assert "Refunded" in labels and "Authorisation released" not in labels

    def test_a_refund_event_arriving_late_never_takes_a_settled_refund_back_to_pending(
        self, sandbox: LocalSandbox, syncer: AlmaSync, store: IntentStore, gateway: StripeGateway
    ) -> None:
        syncer.sync_once()
        intent = self.paid(gateway, "d")
        self.refund(gateway, intent, 500)
        sandbox.advance(301)
        syncer.sync_once()
        [refund] = store.refunds_of(intent.id)
        store.save(refund_states=[replace(refund, status="pending")])
        assert store.refunds_of(intent.id)[0].status == "succeeded"
