"""The local copy of Alma intents that every page reads: SQLite in WAL mode, one writer, many readers.

Each intent row holds the typed columns of `intent_frame.COLUMNS` (what pages filter and chart on, filled by
`intent_row`), the intent's full state as JSON (so `get_intent` returns exactly what was stored) and the last
raw Stripe payload (for the detail view; client_secret never reaches it). Events are kept by id so a refresh
can tell new events from ones it already applied, with their position in Stripe's stream (`sequence`, given
as they are saved, oldest first) so same-second events read back in Stripe's order.

For the Intents detail page: `IntentStore.intent_timeline(intent_id) -> list[domain.TimelineEntry]`, the
intent's milestones merged with its stored events (see domain.intent_timeline).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.domain import AlmaIntent, LastPaymentError, TimelineEntry, intent_timeline
from dashboard.intent_frame import COLUMNS, intent_row, typed_frame

_SQL_TYPES = {"string": "TEXT", "int64": "INTEGER", "Int64": "INTEGER", "bool": "INTEGER"}
_ID_CHUNK = 500  # keeps `IN (?, ...)` well under SQLite's variable limit
# Event sequences advance in steps, leaving room to slot an event that Stripe listed late before the stored
# events it precedes (about 20 such arrivals between two neighbours).
SEQUENCE_STEP = 1 << 20
# Which derivation the typed columns were computed with; a change means they are recomputed on open.
_DERIVED_WITH_KEY = "derived_with_auth_window_seconds"


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    created: int
    intent_id: str | None
    sequence: int = 0  # position in Stripe's event stream, given by the store when saved (0: not saved yet)


@dataclass(frozen=True)
class SyncState:
    cursor_event_id: str | None  # newest event known when the last sync started (None: there was none)
    cursor_created: int  # refreshes ask for events created at or after this (minus an overlap)
    last_synced_at: int
    window_start: int  # first sync listed intents created at or after this


def _intents_table_sql() -> str:
    columns = ", ".join(
        f"{name} {_SQL_TYPES[dtype]}" + (" PRIMARY KEY" if name == "id" else "") for name, dtype in COLUMNS.items()
    )
    return f"CREATE TABLE intents ({columns}, state_json TEXT NOT NULL, raw_json TEXT NOT NULL)"


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    conn.execute(_intents_table_sql())
    conn.execute("CREATE INDEX intents_created ON intents (created)")
    conn.execute("CREATE INDEX intents_status ON intents (status)")
    conn.execute(
        "CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT NOT NULL, created INTEGER NOT NULL, intent_id TEXT)"
    )
    conn.execute("CREATE INDEX events_intent ON events (intent_id, created)")
    conn.execute(
        "CREATE TABLE sync_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), cursor_event_id TEXT,"
        " cursor_created INTEGER NOT NULL, last_synced_at INTEGER NOT NULL, window_start INTEGER NOT NULL)"
    )
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    """Events get an explicit stream position. Version 1 read same-second events in rowid order, which is no
    contract (VACUUM may renumber rowids), so that order becomes their sequence."""
    conn.execute("ALTER TABLE events ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE events SET sequence = rowid * ?", (SEQUENCE_STEP,))
    conn.execute("DROP INDEX events_intent")
    conn.execute("CREATE INDEX events_intent ON events (intent_id, created, sequence)")
    conn.execute("CREATE INDEX events_sequence ON events (sequence)")  # MAX(sequence) on every save


# Index i migrates a database from version i to i + 1. Append only; never edit a shipped step.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_to_v1, _migrate_to_v2)
SCHEMA_VERSION = len(MIGRATIONS)


def _state_json(intent: AlmaIntent) -> str:
    state = {f.name: getattr(intent, f.name) for f in dataclasses.fields(intent) if f.name != "raw"}
    if intent.last_error is not None:
        state["last_error"] = dataclasses.asdict(intent.last_error)
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def _intent_from_json(state_json: str, raw_json: str) -> AlmaIntent:
    state = json.loads(state_json)
    state["metadata"] = tuple((key, value) for key, value in state["metadata"])
    state["payment_method_types"] = tuple(state["payment_method_types"])
    state["last_error"] = LastPaymentError(**state["last_error"]) if state["last_error"] else None
    return AlmaIntent(**state, raw=json.loads(raw_json))


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _ID_CHUNK):
        yield items[start : start + _ID_CHUNK]


class IntentStore:
    def __init__(self, path: Path, auth_window_seconds: int) -> None:
        self.path = Path(path)
        self.auth_window_seconds = auth_window_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        columns = list(COLUMNS) + ["state_json", "raw_json"]
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != "id")
        self._upsert_always_sql = (
            f"INSERT INTO intents ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        self._upsert_if_changed_sql = self._upsert_always_sql + (
            " WHERE intents.state_json IS NOT excluded.state_json OR intents.raw_json IS NOT excluded.raw_json"
        )
        self._migrate()

    # -- connections --------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """One connection per thread; WAL lets readers run while the sync writes."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn(), self._write_lock)

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- schema -------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {version}; this code knows {SCHEMA_VERSION}.")
            for migrate in MIGRATIONS[version:]:
                migrate(conn)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            self._align_typed_columns(conn)

    def schema_version(self) -> int:
        return int(self._conn().execute("SELECT version FROM schema_version").fetchone()[0])

    def _align_typed_columns(self, conn: sqlite3.Connection) -> None:
        """Columns added to intent_frame.COLUMNS, or another auth window, need the typed columns recomputed
        from each row's state; the state JSON makes that possible without asking Stripe again."""
        existing = {row[1] for row in conn.execute("PRAGMA table_info(intents)")}
        missing = [name for name in COLUMNS if name not in existing]
        for name in missing:
            conn.execute(f"ALTER TABLE intents ADD COLUMN {name} {_SQL_TYPES[COLUMNS[name]]}")
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_DERIVED_WITH_KEY,)).fetchone()
        if missing or (row is not None and int(row[0]) != self.auth_window_seconds):
            stored = conn.execute("SELECT state_json, raw_json FROM intents").fetchall()
            self._upsert(conn, (_intent_from_json(state, raw) for state, raw in stored), force=True)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_DERIVED_WITH_KEY, str(self.auth_window_seconds)),
        )

    # -- writes -------------------------------------------------------------------------------------------

    def _upsert(self, conn: sqlite3.Connection, intents: Iterable[AlmaIntent], *, force: bool = False) -> int:
        """Rows actually inserted or changed; an identical intent is left untouched."""
        rows = []
        for intent in intents:
            row = intent_row(intent, self.auth_window_seconds)
            raw = json.dumps(dict(intent.raw), sort_keys=True, separators=(",", ":"))
            values = [row[name] for name in COLUMNS] + [_state_json(intent), raw]
            rows.append([int(v) if isinstance(v, bool) else v for v in values])
        before = conn.total_changes
        conn.executemany(self._upsert_always_sql if force else self._upsert_if_changed_sql, rows)
        return conn.total_changes - before

    def save(
        self,
        intents: Iterable[AlmaIntent] = (),
        events: Iterable[StoredEvent] = (),
        state: SyncState | None = None,
    ) -> int:
        """One transaction: intents, the events that produced them, and the cursor move together or not at
        all. `events` are a listing in Stripe's stream order (oldest first), stored ones included: those keep
        their place and the new ones are stored in theirs (see _new_sequences). Returns how many intents
        were inserted or changed."""
        with self._transaction() as conn:
            written = self._upsert(conn, intents)
            listing = list(events)
            conn.executemany(
                "INSERT INTO events (id, type, created, intent_id, sequence) VALUES (?, ?, ?, ?, ?)",
                [(e.id, e.type, e.created, e.intent_id, sequence) for e, sequence in _new_sequences(conn, listing)],
            )
            if state is not None:
                conn.execute(
                    "INSERT INTO sync_state (singleton, cursor_event_id, cursor_created, last_synced_at,"
                    " window_start) VALUES (1, ?, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET"
                    " cursor_event_id = excluded.cursor_event_id, cursor_created = excluded.cursor_created,"
                    " last_synced_at = excluded.last_synced_at, window_start = excluded.window_start",
                    (state.cursor_event_id, state.cursor_created, state.last_synced_at, state.window_start),
                )
            return written

    def upsert_intents(self, intents: Iterable[AlmaIntent]) -> int:
        return self.save(intents)

    # -- reads --------------------------------------------------------------------------------------------

    def intents_frame(self, created_gte: int | None = None, created_lt: int | None = None) -> pd.DataFrame:
        """Exactly intent_frame.COLUMNS, newest first; only the typed columns are read."""
        clauses, params = [], []
        if created_gte is not None:
            clauses.append("created >= ?")
            params.append(created_gte)
        if created_lt is not None:
            clauses.append("created < ?")
            params.append(created_lt)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(COLUMNS)} FROM intents{where} ORDER BY created DESC, id"
        return typed_frame(pd.read_sql_query(sql, self._conn(), params=params))

    def get_intent(self, intent_id: str) -> AlmaIntent | None:
        return self.get_intents([intent_id]).get(intent_id)

    def get_intents(self, intent_ids: Iterable[str]) -> dict[str, AlmaIntent]:
        ids = sorted(set(intent_ids))
        found: dict[str, AlmaIntent] = {}
        for chunk in _chunks(ids):
            rows = self._conn().execute(
                f"SELECT id, state_json, raw_json FROM intents WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            found.update({intent_id: _intent_from_json(state, raw) for intent_id, state, raw in rows})
        return found

    def all_intents(self) -> list[AlmaIntent]:
        rows = self._conn().execute("SELECT state_json, raw_json FROM intents ORDER BY created DESC, id")
        return [_intent_from_json(state, raw) for state, raw in rows]

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(event_ids))
        known: set[str] = set()
        for chunk in _chunks(ids):
            rows = self._conn().execute(f"SELECT id FROM events WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            known.update(row[0] for row in rows)
        return known

    def intent_events(self, intent_id: str) -> list[StoredEvent]:
        """Oldest first; same-second events in Stripe's stream order."""
        rows = self._conn().execute(
            "SELECT id, type, created, intent_id, sequence FROM events WHERE intent_id = ? ORDER BY created, sequence",
            (intent_id,),
        )
        return [StoredEvent(*row) for row in rows]

    def intent_timeline(self, intent_id: str) -> list[TimelineEntry]:
        """The stored intent's milestones and events as one list, oldest first ([] for an unknown intent)."""
        intent = self.get_intent(intent_id)
        if intent is None:
            return []
        return intent_timeline(intent, self.intent_events(intent_id), self.auth_window_seconds)

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM intents").fetchone()[0])

    def sync_state(self) -> SyncState | None:
        row = (
            self._conn()
            .execute("SELECT cursor_event_id, cursor_created, last_synced_at, window_start FROM sync_state")
            .fetchone()
        )
        return SyncState(*row) if row else None

    def last_synced_at(self) -> int | None:
        state = self.sync_state()
        return state.last_synced_at if state else None


def _new_sequences(conn: sqlite3.Connection, listing: list[StoredEvent]) -> list[tuple[StoredEvent, int]]:
    """The events of `listing` not stored yet, each with its stream position: after the listing's previous
    event and before its next stored one, so an event listed late still reads back in Stripe's order; past
    every stored event, the sequence simply goes on."""
    if not listing:
        return []
    stored: dict[str, int] = {}
    for chunk in _chunks([e.id for e in listing]):
        query = f"SELECT id, sequence FROM events WHERE id IN ({', '.join('?' * len(chunk))})"
        stored.update(conn.execute(query, chunk).fetchall())
    next_stored: list[int | None] = []  # for each position, the sequence of the next stored event after it
    upcoming: int | None = None
    for event in reversed(listing):
        next_stored.append(upcoming)
        upcoming = stored.get(event.id, upcoming)
    next_stored.reverse()
    last = int(conn.execute("SELECT COALESCE(MAX(sequence), 0) FROM events").fetchone()[0])
    previous: int | None = None
    placed: list[tuple[StoredEvent, int]] = []
    for event, upper in zip(listing, next_stored, strict=True):
        if event.id in stored:
            previous = stored[event.id]
            continue
        if upper is None:
            last += SEQUENCE_STEP
            sequence = last
        else:
            if previous is None:
                below = conn.execute("SELECT COALESCE(MAX(sequence), 0) FROM events WHERE sequence < ?", (upper,))
                previous = int(below.fetchone()[0])
            sequence = (previous + upper) // 2
        stored[event.id] = previous = sequence
        placed.append((event, sequence))
    return placed


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store's write lock (one writer at a time, readers unaffected)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._conn

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
