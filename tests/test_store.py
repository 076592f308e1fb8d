from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from dashboard.domain import FAILED_CODE, AlmaIntent, LastPaymentError
from dashboard.intent_frame import COLUMNS, frame_from_intents
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import MIGRATIONS, SCHEMA_VERSION, SEQUENCE_STEP, IntentStore, StoredEvent, SyncState

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


@pytest.fixture
def store(tmp_path: Path) -> IntentStore:
    opened = IntentStore(tmp_path / "alma.sqlite3", WINDOW)
    yield opened
    opened.close()


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
    with pytest.raises(sqlite3.IntegrityError):
        store.save([make_intent(1)], state=SyncState(None, None, T0, T0))  # type: ignore[arg-type]  # NULL cursor time, on purpose
    assert store.count() == 0 and store.sync_state() is None


def test_no_client_secret_in_the_file(store: IntentStore) -> None:
    store.upsert_intents(make_intent(n) for n in range(20))
    store.close()
    data = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert b"pi_00001" in data
    assert b"_secret_" not in data


def test_schema_version_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    first = IntentStore(path, WINDOW)
    first.upsert_intents([make_intent(1)])
    first.close()
    again = IntentStore(path, WINDOW)
    assert again.schema_version() == SCHEMA_VERSION
    assert again.count() == 1


def test_a_version_1_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    with sqlite3.connect(path) as conn:  # exactly what version 1 made and wrote (shipped steps never change)
        MIGRATIONS[0](conn)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
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
    assert migrated.schema_version() == SCHEMA_VERSION == 2
    assert migrated.sync_state() == SyncState("evt_x", T0 + 30, T0 + 31, T0 - 90 * 86_400)
    migrated.save([make_intent(1)], events=[StoredEvent("evt_a", "charge.succeeded", T0, "pi_00001")])
    events = migrated.intent_events("pi_00001")
    assert [e.id for e in events] == ["evt_z", "evt_y", "evt_a", "evt_x"]
    # Version 1's order became the sequence; new events follow.
    assert [e.sequence // SEQUENCE_STEP for e in events] == [1, 2, 4, 3]
    migrated.close()
    assert IntentStore(path, WINDOW).count() == 1  # reopening a migrated file runs no step again


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    IntentStore(path, WINDOW).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="schema version"):
        IntentStore(path, WINDOW)


def test_a_missing_typed_column_is_added_and_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    store = IntentStore(path, WINDOW)
    store.upsert_intents([make_intent(1, status="requires_action", sent_to_alma_at=T0 + 10)])
    store.close()
    with sqlite3.connect(path) as conn:  # a database written before `expires_at` existed
        conn.execute("ALTER TABLE intents DROP COLUMN expires_at")
    reopened = IntentStore(path, WINDOW)
    assert reopened.intents_frame()["expires_at"].tolist() == [T0 + 10 + WINDOW]


def test_another_auth_window_recomputes_the_derived_columns(tmp_path: Path) -> None:
    path = tmp_path / "alma.sqlite3"
    store = IntentStore(path, WINDOW)
    store.upsert_intents([make_intent(1, status="requires_action", sent_to_alma_at=T0 + 10)])
    store.close()
    assert IntentStore(path, 600).intents_frame()["expires_at"].tolist() == [T0 + 10 + 600]


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
