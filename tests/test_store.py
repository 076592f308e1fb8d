from __future__ import annotations

import sqlite3
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.domain import FAILED_CODE, AlmaIntent, LastPaymentError
from dashboard.intent_frame import COLUMNS, frame_from_intents
from dashboard.local_sandbox import free_port
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import (
    SCHEMA_VERSION,
    SEQUENCE_STEP,
    IntentFilter,
    IntentStore,
    StoreConfigError,
    StoredEvent,
    StoredIntent,
    StoreError,
    SyncState,
    parse_location,
)
from tests.conftest import execute

WINDOW = AUTH_WINDOW_SECONDS
T0 = 1_790_000_000


def make_intent(n: int, **fields: object) -> AlmaIntent:
    base = AlmaIntent.from_stripe(
        {
            "id": f"pi_{n:05d}",
            "status": "succeeded",
            "amount": 5_000 + n,
            "currency": "eur",
            "created": T0 + n,
            "client_secret": f"pi_{n:05d}_secret_shh",
            "payment_method_types": ["alma"],
            "metadata": {"order": str(n)},
            "latest_charge": {
                "id": f"ch_{n}",
                "created": T0 + n + 30,
                "payment_method_details": {
                    "type": "alma",
                    "alma": {"installments": {"count": 3}, "transaction_id": f"tx{n}"},
                },
            },
        }
    )
    return replace(base, **fields)


def test_round_trip_is_exact(store: IntentStore) -> None:
    error = LastPaymentError(code=FAILED_CODE, message="Refused", type="card_error", payment_method_type="alma")
    original = make_intent(
        1, status="requires_payment_method", last_error=error, sent_to_alma_at=T0 + 9, updated_at=T0 + 99
    )
    store.upsert_intents([original])
    loaded = store.get_intent(original.id)
    assert loaded == original
    assert loaded.raw == original.raw and "client_secret" not in loaded.raw
    assert store.get_intent("pi_missing") is None


def test_upsert_counts_only_real_changes(store: IntentStore) -> None:
    intents = [make_intent(n) for n in range(3)]
    assert store.upsert_intents(intents) == 3
    assert store.upsert_intents(intents) == 0
    assert store.upsert_intents([replace(intents[1], status="canceled")]) == 1
    assert store.count() == 3
    assert store.get_intent(intents[1].id).status == "canceled"


def test_frame_matches_the_schema_and_the_objects(store: IntentStore) -> None:
    intents = [make_intent(n, sent_to_alma_at=T0 + n) for n in range(5)]
    store.upsert_intents(intents)
    frame = store.intents_frame()
    assert frame.dtypes.astype(str).to_dict() == COLUMNS
    expected = frame_from_intents(sorted(intents, key=lambda i: -i.created), WINDOW)
    assert frame.reset_index(drop=True).equals(expected)


def test_frame_window_filter(store: IntentStore) -> None:
    store.upsert_intents(make_intent(n) for n in range(10))
    frame = store.intents_frame(created_gte=T0 + 3, created_lt=T0 + 7)
    assert frame["id"].tolist() == ["pi_00006", "pi_00005", "pi_00004", "pi_00003"]


def test_empty_store_frame(store: IntentStore) -> None:
    frame = store.intents_frame()
    assert frame.empty and list(frame.columns) == list(COLUMNS)


def test_events_are_kept_once_in_applied_order(store: IntentStore) -> None:
    events = [
        StoredEvent("evt_b", "payment_intent.succeeded", T0 + 5, "pi_00001"),
        StoredEvent("evt_c", "charge.succeeded", T0 + 5, "pi_00001"),
        StoredEvent("evt_a", "payment_intent.created", T0, "pi_00001"),
        StoredEvent("evt_x", "payment_intent.created", T0, "pi_00002"),
    ]
    store.save(events=events)
    store.save(events=events[:2])
    assert [e.id for e in store.intent_events("pi_00001")] == ["evt_a", "evt_b", "evt_c"]
    assert store.known_event_ids(["evt_a", "evt_x", "evt_new"]) == {"evt_a", "evt_x"}


def test_same_second_events_keep_stream_order_across_saves(store: IntentStore) -> None:
    """Ids and save batches say nothing about order; the sequence given at save time does."""
    store.save(events=[StoredEvent("evt_z", "payment_intent.created", T0, "pi_1")])
    store.save(
        events=[
            StoredEvent("evt_z", "payment_intent.created", T0, "pi_1"),  # seen again (overlap): keeps its place
            StoredEvent("evt_m", "payment_intent.requires_action", T0, "pi_1"),
            StoredEvent("evt_a", "payment_intent.payment_failed", T0, "pi_1"),
        ]
    )
    events = store.intent_events("pi_1")
    assert [e.id for e in events] == ["evt_z", "evt_m", "evt_a"]
    assert events[0].sequence < events[1].sequence < events[2].sequence


def test_an_event_listed_late_is_stored_in_its_place(store: IntentStore) -> None:
    """Stripe listed `created` only after `requires_action` (same second) was stored; a later listing shows
    both, in Stripe's order, and the late one is slotted before its successor."""

    def event(event_id: str, event_type: str, created: int) -> StoredEvent:
        return StoredEvent(event_id, event_type, created, "pi_1")

    acted = event("evt_2", "payment_intent.requires_action", T0)
    failed = event("evt_4", "payment_intent.payment_failed", T0)
    store.save(events=[acted, failed])
    created = event("evt_1", "payment_intent.created", T0)
    retried = event("evt_3", "payment_intent.requires_action", T0)
    store.save(events=[created, acted, retried, failed, event("evt_5", "charge.updated", T0 + 1)])
    assert [e.id for e in store.intent_events("pi_1")] == ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"]
    store.save(events=[event("evt_0", "payment_intent.processing", T0), created])  # before every stored one
    assert [e.id for e in store.intent_events("pi_1")][:2] == ["evt_0", "evt_1"]


def test_timeline_of_a_stored_intent(store: IntentStore) -> None:
    intent = make_intent(1)  # succeeded, automatic capture, charge at T0 + 31
    store.save([intent], events=[StoredEvent("evt_s", "payment_intent.succeeded", T0 + 31, intent.id)])
    timeline = store.intent_timeline(intent.id)
    assert [(e.kind, e.at, e.event_id) for e in timeline] == [
        ("created", T0 + 1, None),
        ("authorized", T0 + 31, None),
        ("succeeded", T0 + 31, "evt_s"),
    ]
    assert store.intent_timeline("pi_missing") == []


def test_sync_state(store: IntentStore) -> None:
    assert store.sync_state() is None and store.last_synced_at() is None
    store.save(state=SyncState("evt_1", T0, T0 + 3, T0 - 90 * 86400))
    store.save(state=SyncState(None, T0 + 50, T0 + 60, T0 - 90 * 86400))
    assert store.sync_state() == SyncState(None, T0 + 50, T0 + 60, T0 - 90 * 86400)
    assert store.last_synced_at() == T0 + 60


def test_failed_save_writes_nothing(store: IntentStore) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.save([make_intent(1)], state=SyncState(None, None, T0, T0))  # type: ignore[arg-type]
    assert store.count() == 0 and store.sync_state() is None


def test_no_client_secret_in_the_file(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "alma.sqlite3", WINDOW)
    store.upsert_intents(make_intent(n) for n in range(20))
    store.close()
    data = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert b"pi_00001" in data
    assert b"_secret_" not in data


def test_schema_version_and_reopen(database: str) -> None:
    first = IntentStore(database, WINDOW)
    first.upsert_intents([make_intent(1)])
    first.close()
    again = IntentStore(database, WINDOW)
    assert again.schema_version() == SCHEMA_VERSION
    assert again.count() == 1
    again.close()


# Exactly what version 1 of the store created (SQLite only; shipped steps never change).
_VERSION_1_DDL = (
    "CREATE TABLE intents (id TEXT PRIMARY KEY, status TEXT, amount INTEGER, amount_received INTEGER,"
    " amount_capturable INTEGER, currency TEXT, created INTEGER, capture_method TEXT, description TEXT,"
    " metadata_text TEXT, payment_method_types TEXT, error_code TEXT, error_message TEXT, failure_kind TEXT,"
    " installments INTEGER, alma_transaction_id TEXT, latest_charge_id TEXT, redirect_url TEXT,"
    " cancellation_reason TEXT, canceled_at INTEGER, authorized_at INTEGER, sent_to_alma_at INTEGER,"
    " updated_at INTEGER, expires_at INTEGER, capture_deadline INTEGER, livemode INTEGER,"
    " state_json TEXT NOT NULL, raw_json TEXT NOT NULL)",
    "CREATE INDEX intents_created ON intents (created)",
    "CREATE INDEX intents_status ON intents (status)",
    "CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT NOT NULL, created INTEGER NOT NULL, intent_id TEXT)",
    "CREATE INDEX events_intent ON events (intent_id, created)",
    "CREATE TABLE sync_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), cursor_event_id TEXT,"
    " cursor_created INTEGER NOT NULL, last_synced_at INTEGER NOT NULL, window_start INTEGER NOT NULL)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (1)",
)


def test_a_version_1_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    with sqlite3.connect(path) as conn:  # what version 1 made and wrote
        for statement in _VERSION_1_DDL:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO events (id, type, created, intent_id) VALUES (?, ?, ?, ?)",
            [
                ("evt_z", "payment_intent.created", T0, "pi_00001"),
                ("evt_y", "payment_intent.requires_action", T0, "pi_00001"),
                ("evt_x", "payment_intent.succeeded", T0 + 30, "pi_00001"),
            ],
        )
        conn.execute("INSERT INTO sync_state VALUES (1, 'evt_x', ?, ?, ?)", (T0 + 30, T0 + 31, T0 - 90 * 86_400))
    migrated = IntentStore(path, WINDOW)
    assert migrated.schema_version() == SCHEMA_VERSION == 6
    with sqlite3.connect(path) as conn:  # the pages' indexes, on typed columns added after the steps
        assert {"intents_period", "intents_failures"} <= {row[1] for row in conn.execute("PRAGMA index_list(intents)")}
    assert migrated.sync_state() == SyncState("evt_x", T0 + 30, T0 + 31, T0 - 90 * 86_400)
    migrated.save([make_intent(1)], events=[StoredEvent("evt_a", "charge.succeeded", T0, "pi_00001")])
    events = migrated.intent_events("pi_00001")
    assert [e.id for e in events] == ["evt_z", "evt_y", "evt_a", "evt_x"]
    # Version 1's order became the sequence; new events follow.
    assert [e.sequence // SEQUENCE_STEP for e in events] == [1, 2, 4, 3]
    assert migrated.get_intent("pi_00001") == make_intent(1)
    migrated.close()
    assert IntentStore(path, WINDOW).count() == 1  # reopening a migrated file runs no step again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # an old world-readable file is made private too


def test_newer_schema_refused(database: str) -> None:
    IntentStore(database, WINDOW).close()
    execute(database, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        IntentStore(database, WINDOW)


def test_a_missing_typed_column_is_added_and_backfilled(database: str) -> None:
    store = IntentStore(database, WINDOW)
    store.upsert_intents([make_intent(1, status="requires_action", sent_to_alma_at=T0 + 10)])
    store.close()
    # Written before `expires_at` existed, so before the index on it too.
    execute(database, "DROP INDEX intents_waiting")
    execute(database, "ALTER TABLE intents DROP COLUMN expires_at")
    reopened = IntentStore(database, WINDOW)
    assert reopened.intents_frame()["expires_at"].tolist() == [T0 + 10 + WINDOW]
    reopened.close()


def test_another_auth_window_recomputes_the_derived_columns(database: str) -> None:
    store = IntentStore(database, WINDOW)
    store.upsert_intents([make_intent(1, status="requires_action", sent_to_alma_at=T0 + 10)])
    store.close()
    reopened = IntentStore(database, 600)
    assert reopened.intents_frame()["expires_at"].tolist() == [T0 + 10 + 600]
    reopened.close()


def test_readers_run_while_a_writer_writes(store: IntentStore) -> None:
    store.upsert_intents(make_intent(n) for n in range(100))
    counts: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                counts.append(len(store.intents_frame()))
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for start in range(100, 1_100, 100):
        store.upsert_intents(make_intent(n) for n in range(start, start + 100))
    for reader in readers:
        reader.join()
    assert not errors
    assert all(count % 100 == 0 and 100 <= count <= 1_100 for count in counts)  # whole pages, never half
    assert store.count() == 1_100


# -- where the store lives (ALMA_OPS_DB) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dialect", "file"),
    [
        (".data/alma_ops.sqlite3", "sqlite", Path(".data/alma_ops.sqlite3")),
        ("sqlite:///relative/x.db", "sqlite", Path("relative/x.db")),
        ("sqlite:////abs/x.db", "sqlite", Path("/abs/x.db")),
        ("postgresql://u:pw@db.example:5432/alma", "postgresql", None),
        ("postgresql+psycopg://u@127.0.0.1/alma", "postgresql", None),
    ],
)
def test_a_path_or_a_url(value: str, dialect: str, file: Path | None) -> None:
    location = parse_location(value)
    assert (location.dialect, location.sqlite_path) == (dialect, file)
    if dialect == "postgresql":
        assert location.url.drivername == "postgresql+psycopg"  # postgresql:// means psycopg 3
        assert "pw" not in str(location)  # shown without its password


@pytest.mark.parametrize(
    "value", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "sqlite://", "sqlite:///:memory:", "postgresql://h"]
)
def test_an_unusable_url_is_refused_naming_the_variable(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreConfigError, match="ALMA_OPS_DB"):
        IntentStore(value, WINDOW)
    assert list(tmp_path.iterdir()) == []  # nothing created anywhere


def test_a_server_that_does_not_answer_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"postgresql://alma:hunter2@127.0.0.1:{free_port()}/alma"
    with pytest.raises(StoreError) as raised:
        IntentStore(url, WINDOW)
    message = str(raised.value)
    assert (
        message.startswith("ALMA_OPS_DB: cannot open postgresql+psycopg://alma:***@127.0.0.1:") and "\n" not in message
    )
    assert "hunter2" not in message
    assert list(tmp_path.iterdir()) == []


def test_store_files_are_private(tmp_path: Path) -> None:
    store = IntentStore(tmp_path / "new" / "alma.sqlite3", WINDOW)
    store.upsert_intents([make_intent(1)])
    files = sorted(p.name for p in (tmp_path / "new").iterdir())
    assert files == ["alma.sqlite3", "alma.sqlite3-shm", "alma.sqlite3-wal"]  # WAL mode
    for path in (tmp_path / "new").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    store.close()


# -- state only moves forward ------------------------------------------------------------------------------


def test_an_older_version_never_replaces_a_newer_one(store: IntentStore) -> None:
    newer = StoredIntent(make_intent(1, status="canceled", updated_at=T0 + 50), event_sequence=7 * SEQUENCE_STEP)
    assert store.save([newer]) == 1
    older_second = StoredIntent(make_intent(1, status="requires_action", updated_at=T0 + 40), 9 * SEQUENCE_STEP)
    same_second_earlier = StoredIntent(make_intent(1, status="requires_action", updated_at=T0 + 50), SEQUENCE_STEP)
    listed_before = StoredIntent(make_intent(1, status="requires_action", updated_at=T0 + 50))
    for stale in (older_second, same_second_earlier, listed_before):
        assert store.save([stale]) == 0
        assert store.get_intent("pi_00001") == newer.intent
    same_second_later = StoredIntent(make_intent(1, status="succeeded", updated_at=T0 + 50), 8 * SEQUENCE_STEP)
    assert store.save([same_second_later]) == 1
    assert store.get_stored(["pi_00001"])["pi_00001"] == same_second_later
    assert store.upsert_intents([listed_before]) == 1  # planting a state on purpose (tests, tools) is forced
    assert store.get_intent("pi_00001") == listed_before.intent


def test_the_cursor_never_moves_backwards(store: IntentStore) -> None:
    store.save(state=SyncState("evt_new", T0 + 100, T0 + 101, T0 - 90 * 86_400))
    store.save(state=SyncState("evt_old", T0 + 10, T0 + 200, T0 - 90 * 86_400))  # a stale writer's cursor
    assert store.sync_state() == SyncState("evt_new", T0 + 100, T0 + 200, T0 - 90 * 86_400)


def test_the_store_version_moves_with_every_change(store: IntentStore) -> None:
    assert store.version() == 0
    store.upsert_intents([make_intent(1)])
    first = store.version()
    store.upsert_intents([make_intent(1)])  # nothing new
    assert store.version() == first
    store.save(events=[StoredEvent("evt_1", "payment_intent.created", T0, "pi_00001")])
    assert store.version() > first


# -- quarantine --------------------------------------------------------------------------------------------


def test_a_row_that_cannot_be_written_is_quarantined_and_the_rest_land(store: IntentStore) -> None:
    huge = make_intent(1, amount=10**30)  # beyond any 64-bit column (Stripe caps amounts at 8 digits)
    assert store.save([huge, make_intent(2), make_intent(3)]) == 2
    assert sorted(i.id for i in store.all_intents()) == ["pi_00002", "pi_00003"]
    [held] = store.quarantined()
    assert (held.intent_id, held.attempts) == ("pi_00001", 1)
    assert "amount" in held.reason and "64-bit" in held.reason
    store.save([huge])  # seen again: counted, not duplicated
    assert store.quarantine_count() == 1 and store.quarantined()[0].attempts == 2
    assert store.save([make_intent(1)]) == 1  # a writable version heals it
    assert store.quarantine_count() == 0 and store.count() == 3


def test_a_row_the_database_refuses_is_quarantined(store: IntentStore) -> None:
    """Beyond the range check: whatever the database itself refuses (here text PostgreSQL cannot store, a NUL
    character; SQLite takes it) never aborts the batch."""
    odd = make_intent(1, description="nul \x00 inside")
    assert store.save([odd, make_intent(2)]) == (2 if store.dialect == "sqlite" else 1)
    assert store.get_intent("pi_00002") is not None
    assert store.quarantine_count() == (0 if store.dialect == "sqlite" else 1)


# -- the one writer ----------------------------------------------------------------------------------------


class SteppedClock:
    def __init__(self, now: int) -> None:
        self.now_value = now

    def now(self) -> int:
        return self.now_value


def test_one_writer_at_a_time_across_store_objects(database: str) -> None:
    first, second = IntentStore(database, WINDOW), IntentStore(database, WINDOW, role="worker")
    try:
        assert first.acquire_writer()
        assert not second.acquire_writer()
        assert second.current_writer() == first.writer_identity
        first.release_writer()
        assert first.current_writer() is None
        assert second.acquire_writer()
        assert not first.acquire_writer()
        assert first.writer_status().writer == second.writer_identity
    finally:
        first.close()
        second.close()


def test_a_sqlite_lease_that_ran_out_is_taken_over(tmp_path: Path) -> None:
    clock = SteppedClock(T0)
    hung = IntentStore(tmp_path / "alma.sqlite3", WINDOW, clock=clock)
    other = IntentStore(tmp_path / "alma.sqlite3", WINDOW, clock=clock)
    assert hung.acquire_writer() and not other.acquire_writer()
    clock.now_value += 301  # the hung writer stopped renewing its lease
    assert other.acquire_writer()
    with pytest.raises(RuntimeError, match="took the store over"):
        hung.save([make_intent(1)])  # a writer that lost its lease writes nothing
    assert other.count() == 0
    hung.close()
    other.close()


def test_writer_status_for_the_sidebar(store: IntentStore) -> None:
    assert store.writer_status().last_success_at is None
    store.record_attempt(T0)
    store.record_attempt(T0, error="GatewayUnavailable: down")
    status = store.writer_status()
    assert (status.last_attempt_at, status.last_error, status.last_error_at) == (T0, "GatewayUnavailable: down", T0)
    assert status.last_role == "embedded" and status.last_writer == store.writer_identity
    store.record_attempt(T0 + 60)
    store.record_attempt(T0 + 60, success=True)
    status = store.writer_status()
    assert (status.last_success_at, status.last_error, status.last_attempt_at) == (T0 + 60, None, T0 + 60)


def test_soonest_first_puts_unknown_times_last_and_keeps_the_limit(store: IntentStore) -> None:
    waiting = [make_intent(n, status="requires_action", sent_to_alma_at=T0 + 100 - n) for n in range(4)]
    unknown = [make_intent(n, status="requires_action") for n in (7, 5)]  # redirect not seen yet: no expiry
    store.upsert_intents([*unknown, *waiting])
    on_page = IntentFilter(statuses=("requires_action",))
    order = ["pi_00003", "pi_00002", "pi_00001", "pi_00000", "pi_00005", "pi_00007"]
    assert list(store.intents_frame(where=on_page, soonest="expires_at")["id"]) == order
    for limit in (2, 4, 5):
        assert list(store.intents_frame(where=on_page, soonest="expires_at", limit=limit)["id"]) == order[:limit]
    assert list(store.intents_frame(where=IntentFilter(statuses=("canceled",)), soonest="expires_at")["id"]) == []
