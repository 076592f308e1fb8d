"""The audit table on SQLite and PostgreSQL: entries come back as written, newest first, through every filter;
a store from before the audit trail gains the table on open."""

from __future__ import annotations

from dashboard.audit import CANCEL, CAPTURE, CREATE_INTENT, FAILED, OK, REFUSED, AuditEntry, AuditFilter
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import SCHEMA_VERSION, IntentStore
from tests.conftest import execute

T0 = 1_790_000_000
ENTRIES = [
    AuditEntry(T0, "olga@partner.org", "operator", CREATE_INTENT, OK, "pi_1", 12_345, "alma-ops-create-1"),
    AuditEntry(T0 + 10, "anonymous", "viewer", CAPTURE, REFUSED, "pi_1", 5_000, "alma-ops-capture-2", "may not"),
    AuditEntry(T0 + 20, "olga@partner.org", "operator", CANCEL, "payment_intent_unexpected_state", "pi_2", None, "k3"),
    AuditEntry(T0 + 30, "lea@example.com", "admin", CAPTURE, "no_answer", "pi_3", 1, "k4", "connection lost"),
]


def written(database: str) -> IntentStore:
    store = IntentStore(database, AUTH_WINDOW_SECONDS)
    for entry in ENTRIES:
        store.add_audit_entry(entry)
    return store


def actions_of(store: IntentStore, **wanted: object) -> list[str]:
    return [e.action + "/" + e.outcome for e in store.audit_entries(AuditFilter(**wanted))]  # type: ignore[arg-type]


def test_entries_come_back_as_written_newest_first(database: str) -> None:
    store = written(database)
    assert store.audit_entries(AuditFilter()) == ENTRIES[::-1]
    assert store.audit_entries(AuditFilter(), limit=2) == ENTRIES[:1:-1]
    assert store.audit_people() == ["anonymous", "lea@example.com", "olga@partner.org"]
    store.close()


def test_filters(database: str) -> None:
    store = written(database)
    assert actions_of(store, who="olga@partner.org") == ["cancel/payment_intent_unexpected_state", "create_intent/ok"]
    assert actions_of(store, actions=(CAPTURE,)) == ["capture/no_answer", "capture/refused"]
    assert actions_of(store, outcomes=(FAILED,)) == ["capture/no_answer", "cancel/payment_intent_unexpected_state"]
    assert actions_of(store, outcomes=(OK, REFUSED)) == ["capture/refused", "create_intent/ok"]
    assert actions_of(store, since=T0 + 10, until=T0 + 30) == [
        "cancel/payment_intent_unexpected_state",
        "capture/refused",
    ]
    assert actions_of(store, who="lea@example.com", outcomes=(OK,)) == []
    store.close()


def test_a_store_from_before_the_audit_trail_gains_it(database: str) -> None:
    IntentStore(database, AUTH_WINDOW_SECONDS).close()
    execute(database, "DROP TABLE audit", "UPDATE schema_version SET version = 3")  # what version 3 left

    store = written(database)
    assert store.schema_version() == SCHEMA_VERSION  # the audit step, then every later one
    assert len(store.audit_entries(AuditFilter())) == len(ENTRIES)
    store.close()
