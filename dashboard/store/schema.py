"""The store's tables (SQLAlchemy Core, the same for SQLite and PostgreSQL) and their versioned migrations.

A new database is created at the current version in one step. An existing one runs the steps from its version
on; a step is appended, never edited once shipped. Versions 1 and 2 were only ever SQLite files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from dashboard.intent_frame import COLUMNS

# Event sequences advance in steps, leaving room to slot an event that Stripe listed late before the stored
# events it precedes (about 20 such arrivals between two neighbours).
SEQUENCE_STEP = 1 << 20

_TYPES: dict[str, type[sa.types.TypeEngine[Any]]] = {
    "string": sa.Text,
    "int64": sa.BigInteger,
    "Int64": sa.BigInteger,
    "bool": sa.Boolean,
}

metadata = sa.MetaData()

# The pages' queries (store.queries): a period's figures read from the index alone, never the wide rows with
# their JSON; the newest failures of a kind walk their index backwards.
PAGE_INDEXES: dict[str, tuple[str, ...]] = {
    "intents_period": (
        "created",
        "status",
        "failure_kind",
        "test_lab",
        "amount",
        "amount_received",
        "sent_to_alma_at",
        "authorized_at",
    ),
    "intents_failures": ("failure_kind", "updated_at"),
    # Expiry watch: the soonest to expire on Alma's page, the nearest capture deadlines.
    "intents_waiting": ("status", "expires_at"),
    "intents_held": ("status", "capture_deadline"),
    "intents_test_lab": ("test_lab", "created"),  # Test lab's newest
}


def typed_column(name: str) -> sa.Column[Any]:
    return sa.Column(name, _TYPES[COLUMNS[name]](), primary_key=name == "id")


intents = sa.Table(
    "intents",
    metadata,
    *(typed_column(name) for name in COLUMNS),
    sa.Column("state_json", sa.Text, nullable=False),
    sa.Column("raw_json", sa.Text, nullable=False),
    # The stream position of the event that gave this state (None: a listing gave it). With updated_at it is
    # the row's version: only a newer version replaces it.
    sa.Column("event_sequence", sa.BigInteger),
    # The listing run that last saw this intent: a relist removes what Stripe no longer lists.
    sa.Column("listed_run", sa.Text),
    sa.Index("intents_created", "created"),
    *(sa.Index(name, *columns) for name, columns in PAGE_INDEXES.items()),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("intent_id", sa.Text),
    sa.Column("sequence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("events_intent", "intent_id", "created", "sequence"),
    sa.Index("events_sequence", "sequence"),
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("singleton", sa.Integer, sa.CheckConstraint("singleton = 1"), primary_key=True, autoincrement=False),
    sa.Column("cursor_event_id", sa.Text),
    sa.Column("cursor_created", sa.BigInteger, nullable=False),
    sa.Column("last_synced_at", sa.BigInteger, nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

# A listing of the lookback window in progress (first sync, relist, reconcile), saved with every page.
listing = sa.Table(
    "listing",
    metadata,
    sa.Column("singleton", sa.Integer, sa.CheckConstraint("singleton = 1"), primary_key=True, autoincrement=False),
    sa.Column("run", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),  # on the sync's clock; the newest possible intent
    sa.Column("cursor_event_id", sa.Text),  # taken before the first page
    sa.Column("cursor_created", sa.BigInteger, nullable=False),
    sa.Column("starting_after", sa.Text),  # the last intent of the last saved page
    sa.Column("oldest_created", sa.BigInteger),  # how far back in time the saved pages reach
    sa.Column("listed", sa.BigInteger, nullable=False),
    sa.Column("pages", sa.BigInteger, nullable=False),
    sa.Column("changed", sa.BigInteger, nullable=False),  # rows inserted or healed so far
)

# The one writer: who holds the lock (SQLite: this row and its lease ARE the lock; PostgreSQL: an advisory
# lock, and this row says who holds it).
writer = sa.Table(
    "writer",
    metadata,
    sa.Column("singleton", sa.Integer, sa.CheckConstraint("singleton = 1"), primary_key=True, autoincrement=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.BigInteger, nullable=False),
    sa.Column("lease_until", sa.BigInteger, nullable=False),
)

# What the sidebar tells about syncing: times on the sync's clock.
sync_status = sa.Table(
    "sync_status",
    metadata,
    sa.Column("singleton", sa.Integer, sa.CheckConstraint("singleton = 1"), primary_key=True, autoincrement=False),
    sa.Column("writer", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("last_attempt_at", sa.BigInteger),
    sa.Column("last_success_at", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", sa.BigInteger),
    sa.Column("cursor_lost_at", sa.BigInteger),
    sa.Column("last_reconcile_at", sa.BigInteger),
    sa.Column("last_reconcile_fixed", sa.BigInteger),
)

# Intents that could not be written (say, an amount beyond a 64-bit column); newer ones still land.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("intent_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created", sa.Text),  # as Stripe gave it: it may be the value that did not fit
    sa.Column("first_seen_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.BigInteger, nullable=False),
)

# Bumped by every write that changed what pages show: a dashboard compares one number, not the rows.
store_version = sa.Table(
    "store_version",
    metadata,
    sa.Column("singleton", sa.Integer, sa.CheckConstraint("singleton = 1"), primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Every write attempt the dashboards made (dashboard/audit.py). Rows are only ever added: the sync never
# touches this table, and a relist or reconcile leaves it as it is.
audit = sa.Table(
    "audit",
    metadata,
    # SQLite numbers rows by itself only for an INTEGER primary key; PostgreSQL gets a 64-bit identity.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("intent_id", sa.Text),
    sa.Column("amount", sa.BigInteger),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("audit_at", "at"),
    sa.Index("audit_who_at", "who", "at"),
)

# Refunds of stored intents, as their latest event or listing told (Alma refunds are asynchronous).
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("intent_id", sa.Text, nullable=False),
    sa.Column("charge_id", sa.Text),
    sa.Column("amount", sa.BigInteger, nullable=False),  # cents
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Index("refunds_intent", "intent_id"),
    sa.Index("refunds_created", "created"),
)

# Money as it moved on the balance (charges with their fee, refunds negative): never changed once made.
balance_transactions = sa.Table(
    "balance_transactions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text),  # the charge or refund
    sa.Column("intent_id", sa.Text, nullable=False),  # whose money it is, resolved when stored
    sa.Column("amount", sa.BigInteger, nullable=False),  # cents, signed
    sa.Column("fee", sa.BigInteger, nullable=False),
    sa.Column("net", sa.BigInteger, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Index("balance_transactions_intent", "intent_id"),
    sa.Index("balance_transactions_created", "created"),
)


# One row per alert rule (dashboard/alerts.py): its state, and the notification it owes. Every change moves
# `revision`, and a change is made only from the revision its maker read: of two processes evaluating at once,
# exactly one moves the row, and only that one sends.
alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("rule", sa.Text, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # ok | firing
    sa.Column("since", sa.BigInteger),  # when the status began, on the sync's clock
    sa.Column("last_sent_at", sa.BigInteger),  # the last delivered firing or reminder (the cooldown's start)
    sa.Column("pending", sa.Text),  # the kind of notification owed: firing | reminder | resolved
    sa.Column("notification_id", sa.BigInteger),  # its alert_notifications row
    sa.Column("failed_targets", sa.Text),  # JSON list of target ids where its last attempt failed
    sa.Column("value", sa.Text),  # the rule's figure at the last evaluation, in words
    sa.Column("evaluated_at", sa.BigInteger),
)

# Every notification decided (rule NULL: a test from the Alerts page) and how its delivery went. A retry
# after a failed delivery updates its row (attempts, outcome).
alert_notifications = sa.Table(
    "alert_notifications",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("rule", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),  # firing | reminder | resolved | test
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),  # on the evaluating clock
    sa.Column("attempts", sa.BigInteger, nullable=False),
    sa.Column("last_attempt_at", sa.BigInteger, nullable=False),  # wall time (machine UTC)
    # sending (claimed; until sending_until) | delivered | failed | interrupted | not_sent
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("sending_until", sa.BigInteger),  # wall time after which a "sending" row is taken as interrupted
    sa.Column("detail", sa.Text, nullable=False),  # per target, URLs masked (notify.Delivery.detail)
    sa.Column("failed_targets", sa.Text),  # JSON list of target ids that did not accept it
    sa.Column("idempotency_key", sa.Text, unique=True),  # a test notification's submission
    sa.Index("alert_notifications_created", "created_at"),
)


def _v1_to_v2(conn: sa.Connection) -> None:
    """Events get an explicit stream position. Version 1 read same-second events in rowid order, which is no
    contract (VACUUM may renumber rowids), so that order becomes their sequence. (SQLite only.)"""
    conn.exec_driver_sql("ALTER TABLE events ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0")
    conn.execute(sa.text("UPDATE events SET sequence = rowid * :step"), {"step": SEQUENCE_STEP})
    conn.exec_driver_sql("DROP INDEX events_intent")
    conn.exec_driver_sql("CREATE INDEX events_intent ON events (intent_id, created, sequence)")
    conn.exec_driver_sql("CREATE INDEX events_sequence ON events (sequence)")


def _v2_to_v3(conn: sa.Connection) -> None:
    """SQLAlchemy schema: intents get their version and listing run; the listing, writer, sync status,
    quarantine and store version tables are new."""
    conn.exec_driver_sql("ALTER TABLE intents ADD COLUMN event_sequence BIGINT")
    conn.exec_driver_sql("ALTER TABLE intents ADD COLUMN listed_run TEXT")
    metadata.create_all(conn, checkfirst=True)


def _v3_to_v4(conn: sa.Connection) -> None:
    """The audit trail."""
    audit.create(conn, checkfirst=True)


def _v4_to_v5(conn: sa.Connection) -> None:
    """Refunds and balance transactions (fees, net) are new tables."""
    metadata.create_all(conn, tables=[refunds, balance_transactions], checkfirst=True)


def _v5_to_v6(conn: sa.Connection) -> None:
    """Alert state per rule and the notifications' history."""
    metadata.create_all(conn, tables=[alert_state, alert_notifications], checkfirst=True)


# Key v migrates a database from version v to v + 1. Append only; never edit a shipped step.
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}
SCHEMA_VERSION = 6


class SchemaTooNew(RuntimeError):
    pass


def migrate(conn: sa.Connection, where: str) -> None:
    """Create or upgrade the schema in the caller's transaction (which holds the dialect's migration lock)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("schema_version"):
        metadata.create_all(conn)
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        return
    version = conn.execute(sa.select(schema_version.c.version)).scalar_one_or_none() or 0
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(f"{where} has schema version {version}; this code knows {SCHEMA_VERSION}.")
    if version == 0:
        metadata.create_all(conn, checkfirst=True)
    for step in range(max(version, 1), SCHEMA_VERSION):
        MIGRATIONS[step](conn)
    conn.execute(schema_version.delete())
    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
