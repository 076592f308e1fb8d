"""The local copy of Alma intents that every page reads, on SQLite (embedded default) or PostgreSQL (teams).

Each intent row holds the typed columns of `intent_frame.COLUMNS` (what pages filter and chart on, filled by
`intent_row`), the intent's full state as JSON (so `get_intent` returns exactly what was stored), the last raw
Stripe payload (for the detail view; client_secret never reaches it) and its version: `updated_at` and the
stream position of the event that gave it. A write replaces a row only with a version at least as new, so a
stale writer cannot move an intent backwards. Events are kept by id so a refresh can tell new events from ones
it already applied, with their position in Stripe's stream (`sequence`, given as they are saved, oldest
first) so same-second events read back in Stripe's order.

For the Intents detail page: `IntentStore.intent_timeline(intent_id) -> list[domain.TimelineEntry]`, the
intent's milestones merged with its stored events (see domain.intent_timeline).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from dashboard import analytics
from dashboard.audit import AuditEntry, AuditFilter
from dashboard.clock import Clock, SystemClock
from dashboard.domain import (
    OUTCOMES,
    AlmaIntent,
    BalanceTransaction,
    LastPaymentError,
    Refund,
    TimelineEntry,
    intent_timeline,
    outcome,
)
from dashboard.intent_frame import COLUMNS, intent_row, typed_frame
from dashboard.store import audit_trail, dialects
from dashboard.store.location import ENV_NAME, StoreLocation, parse_location
from dashboard.store.queries import IntentFilter, PageKey, SortColumn, constant_offset_spans, keyset_query
from dashboard.store.schema import (
    SEQUENCE_STEP,
    audit,
    balance_transactions,
    intents,
    listing,
    meta,
    migrate,
    quarantine,
    refunds,
    schema_version,
    store_version,
    sync_state,
    sync_status,
    typed_column,
)
from dashboard.store.schema import events as events_table

log = logging.getLogger(__name__)

_ID_CHUNK = 500  # keeps `IN (...)` well under SQLite's variable limit
# Which derivation the typed columns were computed with; a change means they are recomputed on open.
_DERIVED_WITH_KEY = "derived_with_auth_window_seconds"
_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT_COLUMNS = tuple(name for name, dtype in COLUMNS.items() if dtype in ("int64", "Int64"))
# A writer that stops renewing (a hung or frozen process) loses the SQLite lock after this long.
WRITER_LEASE_SECONDS = 300


REFUND_TYPES = ("refund", "refund_failure")  # a failed refund's money comes back
MONEY_MOVE_COLUMNS: dict[str, str] = {
    "id": "string",
    "type": "string",
    "amount": "int64",
    "fee": "int64",
    "net": "int64",
    "created": "int64",
    "intent_id": "string",
    "installments": "Int64",
}


@dataclass(frozen=True)
class IntentMoney:
    """What one intent's money came to on the balance, in cents."""

    fee: int
    net: int
    refunded: int


class StoreError(RuntimeError):
    """The store cannot be opened; the message names ALMA_OPS_DB and never a password."""


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


@dataclass(frozen=True)
class StoredIntent:
    """An intent with its version: the event stream position that gave its state (None: a listing)."""

    intent: AlmaIntent
    event_sequence: int | None = None


@dataclass(frozen=True)
class ListingProgress:
    """A listing of the lookback window under way; saved with every page, so a killed one resumes."""

    run: str
    kind: str
    window_start: int
    started_at: int
    cursor_event_id: str | None
    cursor_created: int
    starting_after: str | None
    oldest_created: int | None
    listed: int
    pages: int
    changed: int

    @property
    def covered_fraction(self) -> float:
        """How much of the window's time span the saved pages reach back over (listings go newest first).
        Time, not a count: nobody can know how many intents are left, so nobody pretends to."""
        span = self.started_at - self.window_start
        if self.oldest_created is None or span <= 0:
            return 0.0
        return min(max((self.started_at - self.oldest_created) / span, 0.0), 1.0)


@dataclass(frozen=True)
class WriterStatus:
    """Who syncs and how it went, for the sidebar. Times are on the sync's clock."""

    writer: str | None  # the lock holder now (role@host:pid:token), None when nobody syncs this moment
    last_writer: str | None  # who ran the last attempt
    last_role: str | None  # "embedded" | "worker"
    last_attempt_at: int | None
    last_success_at: int | None
    last_error: str | None  # the last attempt's failure (None once an attempt succeeds)
    last_error_at: int | None
    cursor_lost_at: int | None  # when the event cursor was found gone and the window relisted
    last_reconcile_at: int | None
    last_reconcile_fixed: int | None


@dataclass(frozen=True)
class IntentPage:
    rows: pd.DataFrame  # intent_frame.COLUMNS, in the page's order
    total: int | None  # rows matching the filter, all pages together (None: not counted)
    next_key: PageKey | None  # None: this was the last page


@dataclass(frozen=True)
class IntentTotals:
    """A filter's rows counted and added up, in cents: what was asked (gross) and what came in (received)."""

    count: int
    gross: int
    received: int


@dataclass(frozen=True)
class QuarantinedIntent:
    intent_id: str
    reason: str
    created: str | None
    first_seen_at: int
    last_seen_at: int
    attempts: int


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


def _unwritable(row: Mapping[str, Any]) -> str | None:
    """Why a row cannot be stored as it is, or None. Integers beyond 64 bits fit neither database."""
    for name in _INT_COLUMNS:
        value = row[name]
        if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            return f"{name} {value} does not fit a 64-bit integer"
    return None


def _by_outcome(grouped: Iterable[Sequence[Any]]) -> list[tuple[tuple[int, str], tuple[int, ...]]]:
    """(key, status, failure_kind, *sums) groups added up per (key, domain.outcome), in key then OUTCOMES
    order: the database groups by the raw columns, the domain names them (one rule, as in analytics)."""
    totals: dict[tuple[int, str], tuple[int, ...]] = {}
    for key, status, kind, *sums in grouped:
        label = outcome(status, kind or None)
        before = totals.get((key, label), (0,) * len(sums))
        totals[(key, label)] = tuple(b + int(v or 0) for b, v in zip(before, sums, strict=True))
    order = {label: position for position, label in enumerate(OUTCOMES)}
    return sorted(totals.items(), key=lambda item: (item[0][0], order[item[0][1]]))


@dataclass(frozen=True)
class OverviewFigures:
    """A period's Overview, each part exactly what the analytics function of that name gives on its rows."""

    kpis: analytics.Kpis
    status_counts: pd.DataFrame  # [outcome, count, amount_cents]
    daily_by_status: pd.DataFrame  # [day, outcome, count, amount_cents]
    daily_money: pd.DataFrame  # [day, outcome, amount_cents]
    time_to_authorise: pd.DataFrame  # [bucket_start, bucket_end, outcome, count]


@dataclass(frozen=True)
class _Group:
    """Intents of one local day (number, and that day's UTC offset), status, failure kind, sent or not, and
    authorisation wait bucket (None: not authorised after a redirect): how many, and their sums in cents."""

    day: int
    offset: int
    status: str
    kind: str | None
    sent: bool
    wait: int | None
    count: int
    amount: int
    received: int


def _local_midnights(days: Sequence[int], offsets: Mapping[int, int], tz: str) -> pd.Series:
    """Each local day number as analytics names days: noon of that day as an instant, then its local midnight."""
    noon = pd.Series([day * 86_400 - offsets[day] + 43_200 for day in days], dtype="int64")
    return analytics.to_local(noon, tz).dt.normalize()


def _overview_of(groups: Sequence[_Group], tz: str, bucket_seconds: int) -> OverviewFigures:
    def total(keep: Callable[[_Group], bool], value: Callable[[_Group], int] = lambda g: g.count) -> int:
        return sum(value(g) for g in groups if keep(g))

    paid, sent = total(lambda g: g.status == "succeeded"), total(lambda g: g.sent)
    kpis = analytics.Kpis(
        intents=total(lambda g: True),
        succeeded=paid,
        succeeded_cents=total(lambda g: g.status == "succeeded", lambda g: g.received),
        sent_to_alma=sent,
        conversion=paid / sent if sent else None,
        awaiting_customer=total(lambda g: g.status == "requires_action"),
        expired=total(lambda g: g.kind == "expired"),
        declined=total(lambda g: g.kind == "declined"),
    )
    counts = _by_outcome((0, g.status, g.kind, g.count, g.amount) for g in groups)
    status_counts = pd.DataFrame(
        [(label, n, cents) for (_, label), (n, cents) in counts], columns=["outcome", "count", "amount_cents"]
    ).astype({"outcome": "string", "count": "int64", "amount_cents": "int64"})

    offsets = {g.day: g.offset for g in groups}
    daily = _by_outcome((g.day, g.status, g.kind, g.count, g.amount, g.received) for g in groups)
    days = _local_midnights([day for (day, _), _ in daily], offsets, tz)
    labels = pd.Series([label for (_, label), _ in daily], dtype="string")
    counts, amounts, received = (pd.Series([sums[n] for _, sums in daily], dtype="int64") for n in range(3))
    daily_by_status = pd.DataFrame({"day": days, "outcome": labels, "count": counts, "amount_cents": amounts})
    daily_money = analytics.money_by_day(days, labels, amounts, received)

    waits = _by_outcome((g.wait, g.status, g.kind, g.count) for g in groups if g.wait is not None)
    starts = pd.Series([int(start) for (start, _), _ in waits], dtype="int64")
    time_to_authorise = pd.DataFrame(
        {
            "bucket_start": starts,
            "bucket_end": starts + bucket_seconds,
            "outcome": pd.Series([label for (_, label), _ in waits], dtype="string"),
            "count": pd.Series([sums[0] for _, sums in waits], dtype="int64"),
        }
    )
    return OverviewFigures(kpis, status_counts, daily_by_status, daily_money, time_to_authorise)


def _version(updated_at: int | None, event_sequence: int | None) -> tuple[int, int]:
    return (updated_at if updated_at is not None else -1, event_sequence if event_sequence is not None else -1)


class IntentStore:
    def __init__(
        self,
        location: str | Path | StoreLocation,
        auth_window_seconds: int,
        *,
        role: str = "embedded",
        clock: Clock | None = None,
    ) -> None:
        """Opens (creating or migrating) the store. `clock` dates writer leases and quarantine entries: wall
        time, because they are about processes, not about Stripe."""
        self.location = location if isinstance(location, StoreLocation) else parse_location(location)
        self.auth_window_seconds = auth_window_seconds
        self._clock: Clock = clock or SystemClock()
        self._engine = dialects.create_engine(self.location)
        self._writer = dialects.WriterLock(
            self._engine, dialects.writer_identity(role, secrets.token_hex(4)), WRITER_LEASE_SECONDS
        )
        try:
            self._migrate()
        except sa.exc.DBAPIError as error:
            self._engine.dispose()
            reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
            raise StoreError(f"{ENV_NAME}: cannot open {self.location}: {reason}") from None
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def path(self) -> Path:
        """The SQLite file (tests and the local sandbox's state file beside it)."""
        if self.location.sqlite_path is None:
            raise AttributeError("a PostgreSQL store has no file")
        return self.location.sqlite_path

    @property
    def dialect(self) -> str:
        return self.location.dialect

    def __repr__(self) -> str:
        return f"IntentStore({self.location})"

    # -- connections --------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction; while this store holds the writer lock, it is renewed in the same one."""
        with dialects.write_transaction(self._engine) as conn:
            self._writer.renew(conn, self._clock.now())
            yield conn

    @property
    def engine(self) -> sa.Engine:
        """For the store's other tables' keepers (store.alert_log): one pool of connections per process."""
        return self._engine

    def close(self) -> None:
        self._writer.release()
        self._engine.dispose()

    # -- schema -------------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with dialects.write_transaction(self._engine) as conn:
            dialects.lock_for_migration(conn)
            migrate(conn, str(self.location))
            self._align_typed_columns(conn)

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(schema_version.c.version)).scalar_one())

    def _align_typed_columns(self, conn: sa.Connection) -> None:
        """Columns added to intent_frame.COLUMNS, or another auth window, need the typed columns recomputed
        from each row's state; the state JSON makes that possible without asking Stripe again."""
        existing = {column["name"] for column in sa.inspect(conn).get_columns("intents")}
        missing = [name for name in COLUMNS if name not in existing]
        for name in missing:
            column = typed_column(name)
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE intents ADD COLUMN {name} {kind}")
        derived_with = conn.execute(sa.select(meta.c.value).where(meta.c.key == _DERIVED_WITH_KEY)).scalar()
        if missing or (derived_with is not None and int(derived_with) != self.auth_window_seconds):
            rows = conn.execute(sa.select(intents.c.id, intents.c.state_json, intents.c.raw_json))
            for intent_id, state, raw in rows.all():
                typed = intent_row(_intent_from_json(state, raw), self.auth_window_seconds)
                conn.execute(intents.update().where(intents.c.id == intent_id).values(typed))
        statement = dialects.upsert(conn, meta).values(key=_DERIVED_WITH_KEY, value=str(self.auth_window_seconds))
        conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": statement.excluded.value}))
        for index in intents.indexes:  # on typed columns, so made once those exist (schema.PAGE_INDEXES)
            index.create(conn, checkfirst=True)

    # -- the one writer -----------------------------------------------------------------------------------

    @property
    def writer_identity(self) -> str:
        return self._writer._me.owner

    def acquire_writer(self) -> bool:
        """Take the writer lock (True), or learn that another writer holds it (False). Held until released."""
        return self._writer.acquire(self._clock.now())

    def release_writer(self) -> None:
        self._writer.release()

    def current_writer(self) -> str | None:
        with self._read() as conn:
            return self._writer.holder(conn, self._clock.now())

    def record_attempt(self, at: int, *, error: str | None = None, success: bool = False) -> None:
        """The sync's attempt at `at` (its clock): started, or ended with success or with `error`."""
        values: dict[str, Any] = {"writer": self.writer_identity, "role": self._writer._me.role}
        if success:
            values.update(last_success_at=at, last_error=None, last_error_at=None)
        elif error is not None:
            values.update(last_error=error, last_error_at=at)
        else:
            values.update(last_attempt_at=at)
        self._set_status(values)

    def record_cursor_lost(self, at: int) -> None:
        self._set_status({"cursor_lost_at": at})

    def record_reconcile(self, at: int, fixed: int) -> None:
        self._set_status({"last_reconcile_at": at, "last_reconcile_fixed": fixed})

    def _set_status(self, values: dict[str, Any]) -> None:
        with self._write() as conn:
            statement = dialects.upsert(conn, sync_status).values(singleton=1, **values)
            conn.execute(statement.on_conflict_do_update(index_elements=["singleton"], set_=values))

    def writer_status(self) -> WriterStatus:
        with self._read() as conn:
            found = conn.execute(sa.select(sync_status)).mappings().first()
            row: dict[str, Any] = dict(found) if found is not None else {}
            holder = self._writer.holder(conn, self._clock.now())
        return WriterStatus(
            writer=holder,
            last_writer=row.get("writer"),
            last_role=row.get("role"),
            last_attempt_at=row.get("last_attempt_at"),
            last_success_at=row.get("last_success_at"),
            last_error=row.get("last_error"),
            last_error_at=row.get("last_error_at"),
            cursor_lost_at=row.get("cursor_lost_at"),
            last_reconcile_at=row.get("last_reconcile_at"),
            last_reconcile_fixed=row.get("last_reconcile_fixed"),
        )

    # -- writes -------------------------------------------------------------------------------------------

    def _stored_versions(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, tuple[str, str, Any, Any]]:
        found: dict[str, tuple[str, str, Any, Any]] = {}
        columns = (intents.c.id, intents.c.state_json, intents.c.raw_json, intents.c.updated_at)
        for chunk in _chunks(sorted(set(ids))):
            rows = conn.execute(sa.select(*columns, intents.c.event_sequence).where(intents.c.id.in_(chunk)))
            found.update({row[0]: (row[1], row[2], row[3], row[4]) for row in rows})
        return found

    def _upsert(
        self,
        conn: sa.Connection,
        stored_intents: Iterable[StoredIntent | AlmaIntent],
        *,
        listed_run: str | None = None,
        force: bool = False,
    ) -> int:
        """Rows actually inserted or changed. An identical intent is left untouched, an older version never
        replaces a newer one (unless `force`), and a row that cannot be written is quarantined instead of
        failing the batch."""
        prepared: dict[str, dict[str, Any]] = {}
        for item in stored_intents:
            entry = item if isinstance(item, StoredIntent) else StoredIntent(item)
            intent = entry.intent
            values = intent_row(intent, self.auth_window_seconds)
            values.update(
                state_json=_state_json(intent),
                raw_json=json.dumps(dict(intent.raw), sort_keys=True, separators=(",", ":")),
                event_sequence=entry.event_sequence,
                listed_run=listed_run,
            )
            prepared[intent.id] = values
        stored = self._stored_versions(conn, list(prepared))
        changed: list[dict[str, Any]] = []
        for intent_id, values in prepared.items():
            before = stored.get(intent_id)
            if before is not None:
                state, raw, updated_at, sequence = before
                if not force and _version(values["updated_at"], values["event_sequence"]) < _version(
                    updated_at, sequence
                ):
                    continue  # older than what is stored
                if (state, raw) == (values["state_json"], values["raw_json"]):
                    continue  # nothing new
            changed.append(values)
        if listed_run is not None:  # the listing saw these, changed or not
            for chunk in _chunks(list(prepared)):
                conn.execute(intents.update().where(intents.c.id.in_(chunk)).values(listed_run=listed_run))
        writable = []
        for values in changed:
            if (reason := _unwritable(values)) is not None:
                self._quarantine(conn, values, reason)
            else:
                writable.append(values)
        written = self._write_rows(conn, writable, force=force)
        for chunk in _chunks(written):
            conn.execute(quarantine.delete().where(quarantine.c.intent_id.in_(chunk)))
        return len(written)

    def _write_rows(self, conn: sa.Connection, rows: list[dict[str, Any]], *, force: bool) -> list[str]:
        """The ids written. The batch goes in one statement; if the database refuses it, row by row, and the
        rows it refuses are quarantined."""
        if not rows:
            return []
        for row in rows:
            if row["listed_run"] is None:  # an event's write keeps the row's last listing run
                row.pop("listed_run")
        try:
            with conn.begin_nested():
                for keys in {tuple(row) for row in rows}:
                    batch = [row for row in rows if tuple(row) == keys]
                    conn.execute(self._upsert_statement(conn, keys, force=force), batch)
            return [row["id"] for row in rows]
        except (sa.exc.DBAPIError, OverflowError):
            pass
        written = []
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(self._upsert_statement(conn, tuple(row), force=force), [row])
            except (sa.exc.DBAPIError, OverflowError) as error:
                self._quarantine(conn, row, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
                continue
            written.append(row["id"])
        return written

    def _upsert_statement(self, conn: sa.Connection, keys: Sequence[str], *, force: bool) -> Any:
        statement = dialects.upsert(conn, intents)
        updates = {name: statement.excluded[name] for name in keys if name != "id"}
        # The database checks the version too: whatever a caller computed, a row never moves backwards.
        new_version = sa.tuple_(
            sa.func.coalesce(statement.excluded.updated_at, -1), sa.func.coalesce(statement.excluded.event_sequence, -1)
        )
        old_version = sa.tuple_(
            sa.func.coalesce(intents.c.updated_at, -1), sa.func.coalesce(intents.c.event_sequence, -1)
        )
        return statement.on_conflict_do_update(
            index_elements=["id"], set_=updates, where=None if force else new_version >= old_version
        )

    def _quarantine(self, conn: sa.Connection, values: Mapping[str, Any], reason: str) -> None:
        log.warning("intent %s quarantined: %s", values["id"], reason)
        now = self._clock.now()
        statement = dialects.upsert(conn, quarantine).values(
            intent_id=values["id"],
            reason=reason,
            created=str(values["created"]),
            first_seen_at=now,
            last_seen_at=now,
            attempts=1,
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["intent_id"],
                set_={"reason": reason, "last_seen_at": now, "attempts": quarantine.c.attempts + 1},
            )
        )

    def _bump_version(self, conn: sa.Connection) -> None:
        statement = dialects.upsert(conn, store_version).values(singleton=1, version=1)
        conn.execute(
            statement.on_conflict_do_update(index_elements=["singleton"], set_={"version": store_version.c.version + 1})
        )

    def save(
        self,
        intents_to_save: Iterable[StoredIntent | AlmaIntent] = (),
        events: Iterable[StoredEvent] = (),
        state: SyncState | None = None,
        *,
        progress: ListingProgress | None = None,
        refund_states: Iterable[Refund] = (),
        transactions: Iterable[BalanceTransaction] = (),
    ) -> int:
        """One transaction: intents, the events that produced them, their refunds and balance transactions,
        the cursor, and a listing's progress move together or not at all. `events` are a listing in Stripe's
        stream order (oldest first), stored ones included: those keep their place and the new ones are
        stored in theirs (see place_events). The cursor only moves forward.
        Returns how many intents were inserted or changed."""
        with self._write() as conn:
            run = progress.run if progress is not None else None
            written = self._upsert(conn, intents_to_save, listed_run=run)
            money = self._save_money(conn, list(refund_states), list(transactions))
            new_events = self._insert_new_events(conn, events)
            if state is not None:
                self._move_cursor(conn, state)
            if progress is not None:
                self._save_progress(conn, progress)
            if written or new_events or money:
                self._bump_version(conn)
            return written

    def _save_money(self, conn: sa.Connection, found: list[Refund], moves: list[BalanceTransaction]) -> int:
        """Keep the refunds of stored intents and the balance transactions of their charges and refunds (a
        list or an event stream also brings other payment methods'). A settled refund never goes back to
        pending (events may arrive out of order). Returns how many rows changed."""
        intent_ids = self._existing(conn, intents.c.id, [r.intent_id for r in found if r.intent_id])
        kept = [dataclasses.asdict(r) for r in found if r.intent_id in intent_ids]
        changed = 0
        if kept:
            statement = dialects.upsert(conn, refunds).values(kept)
            excluded = statement.excluded
            settled = sa.case((excluded.status == "pending", refunds.c.status), else_=excluded.status)
            changed += conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"status": settled, "failure_reason": excluded.failure_reason, "reason": excluded.reason},
                    where=refunds.c.status.is_distinct_from(settled),
                )
            ).rowcount
        sources = [m.source_id for m in moves if m.source_id]
        owner = self._owners(conn, intents.c.latest_charge_id, intents.c.id, sources)
        owner.update(self._owners(conn, refunds.c.id, refunds.c.intent_id, sources))
        rows = [{**dataclasses.asdict(m), "intent_id": owner[m.source_id]} for m in moves if m.source_id in owner]
        if rows:
            statement = dialects.upsert(conn, balance_transactions).values(rows)
            changed += conn.execute(statement.on_conflict_do_nothing(index_elements=["id"])).rowcount
        return changed

    def _existing(self, conn: sa.Connection, column: sa.Column[Any], values: Sequence[str]) -> set[str]:
        return set(self._owners(conn, column, column, values))

    def _owners(
        self, conn: sa.Connection, key: sa.Column[Any], owner: sa.Column[Any], values: Sequence[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(values))):
            found.update((str(k), str(v)) for k, v in conn.execute(sa.select(key, owner).where(key.in_(chunk))))
        return found

    def _insert_new_events(self, conn: sa.Connection, listed: Iterable[StoredEvent]) -> list[StoredEvent]:
        placed = self._place_events(conn, list(listed))
        known = self._known(conn, [e.id for e in placed])
        new_events = [e for e in placed if e.id not in known]
        if new_events:
            conn.execute(events_table.insert(), [dataclasses.asdict(e) for e in new_events])
        return new_events

    def upsert_intents(self, intents_to_save: Iterable[AlmaIntent | StoredIntent]) -> int:
        """Write these states as they are, whatever the stored versions (tests and tools that plant a state;
        the sync uses save, which only moves forward). Returns how many rows changed."""
        with self._write() as conn:
            written = self._upsert(conn, intents_to_save, force=True)
            if written:
                self._bump_version(conn)
            return written

    def _move_cursor(self, conn: sa.Connection, state: SyncState) -> None:
        """Write the sync state; a cursor older than the stored one is not taken (the rest of the state is)."""
        current = conn.execute(sa.select(sync_state).with_for_update()).mappings().first()
        values = dataclasses.asdict(state)
        if current is not None and current["cursor_created"] > state.cursor_created:
            values.update(cursor_event_id=current["cursor_event_id"], cursor_created=current["cursor_created"])
        statement = dialects.upsert(conn, sync_state).values(singleton=1, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["singleton"], set_=values))

    # -- listings (first sync, relist, reconcile) ---------------------------------------------------------

    def listing_progress(self) -> ListingProgress | None:
        """The listing under way (or interrupted), None when there is none."""
        with self._read() as conn:
            row = conn.execute(sa.select(listing)).mappings().first()
        if row is None:
            return None
        return ListingProgress(**{k: v for k, v in row.items() if k != "singleton"})

    def _save_progress(self, conn: sa.Connection, progress: ListingProgress) -> None:
        values = {f.name: getattr(progress, f.name) for f in dataclasses.fields(progress)}
        statement = dialects.upsert(conn, listing).values(singleton=1, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["singleton"], set_=values))

    def finish_listing(
        self, progress: ListingProgress, state: SyncState, events_seen: Iterable[StoredEvent] = ()
    ) -> int:
        """End a listing: intents of the window that it did not see (Stripe no longer has them: an account
        or sandbox reset) are removed, the events it reflects are marked seen, the cursor moves, the progress
        row goes. Returns how many rows were removed."""
        with self._write() as conn:
            gone = (
                intents.delete()
                .where(intents.c.created >= progress.window_start)
                .where(intents.c.created <= progress.started_at)
                .where(sa.or_(intents.c.listed_run.is_(None), intents.c.listed_run != progress.run))
            )
            removed = conn.execute(gone).rowcount or 0
            self._insert_new_events(conn, events_seen)
            self._move_cursor(conn, state)
            conn.execute(listing.delete())
            if removed or progress.changed:
                self._bump_version(conn)
            return removed

    # -- reads --------------------------------------------------------------------------------------------

    def intents_frame(
        self,
        created_gte: int | None = None,
        created_lt: int | None = None,
        *,
        where: IntentFilter | None = None,
        newest: Literal["created", "updated_at"] = "created",
        soonest: Literal["expires_at", "capture_deadline"] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Exactly intent_frame.COLUMNS for the rows matching `where` (and the created bounds), newest first by
        `newest`, or soonest first by `soonest` (unknown times last), at most `limit`: what a short list or a
        chart needs, never more."""
        where = where or IntentFilter()
        if created_gte is not None or created_lt is not None:
            where = dataclasses.replace(where, created_gte=created_gte, created_lt=created_lt)
        columns = [intents.c[name] for name in COLUMNS]
        if soonest is not None:
            # Known times first along the (status, time) index, then the unknown ones: one ORDER BY … NULLS
            # LAST would sort every matching row in SQLite (its index keeps NULLs first).
            time = intents.c[soonest]
            known = self._frame(
                sa.select(*columns).where(where.clause(), time.is_not(None)).order_by(time, intents.c.id).limit(limit)
            )
            left = None if limit is None else limit - len(known)
            if left == 0:
                return known
            unknown = sa.select(*columns).where(where.clause(), time.is_(None)).order_by(intents.c.id).limit(left)
            return (
                pd.concat([known, self._frame(unknown)], ignore_index=True) if not known.empty else self._frame(unknown)
            )
        order = (intents.c[newest].desc().nulls_last(), intents.c.id.desc() if newest != "created" else intents.c.id)
        return self._frame(sa.select(*columns).where(where.clause()).order_by(*order).limit(limit))

    def _frame(self, query: sa.Select[Any]) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return typed_frame(pd.DataFrame([dict(r) for r in rows], columns=list(COLUMNS)))

    # -- the Intents table and its CSV: filtered, sorted and paged in the database ------------------------

    def count_intents(self, where: IntentFilter | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(intents).where((where or IntentFilter()).clause())
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def intent_totals(self, where: IntentFilter | None = None) -> IntentTotals:
        """The filter's count, gross (amount) and received (amount_received), in one pass of the database."""
        i = intents.c
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(i.amount), 0),
            sa.func.coalesce(sa.func.sum(i.amount_received), 0),
        ).where((where or IntentFilter()).clause())
        with self._read() as conn:
            count, gross, received = conn.execute(query).one()
        return IntentTotals(int(count), int(gross), int(received))

    def intents_page(
        self,
        where: IntentFilter | None = None,
        *,
        sort: SortColumn = "created",
        descending: bool = True,
        after: PageKey | None = None,
        limit: int = 100,
        counted: bool = True,
    ) -> IntentPage:
        """One keyset page of the filter in (sort, id) order, its total (unless not `counted`: a page that
        shows intent_totals already has it), and the key of the next page."""
        where = where or IntentFilter()
        columns = [intents.c[name] for name in COLUMNS]
        rows = self._frame(keyset_query(columns, where, sort=sort, descending=descending, after=after, limit=limit))
        next_key = None
        if len(rows) == limit:
            last = rows.iloc[-1]
            next_key = PageKey(int(last[sort]), str(last["id"]))
        return IntentPage(rows, self.count_intents(where) if counted else None, next_key)

    def metadata_keys(self, where: IntentFilter | None = None) -> list[str]:
        """Every metadata key among the filter's intents, sorted: a CSV's `metadata.<key>` columns."""
        with self._read() as conn:
            return dialects.metadata_keys(conn, intents.c.state_json, (where or IntentFilter()).clause())

    def metadata_of(self, intent_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Each intent's metadata (those with none are left out)."""
        found: dict[str, dict[str, str]] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(intent_ids))):
                query = sa.select(intents.c.id, intents.c.state_json).where(intents.c.id.in_(chunk))
                for intent_id, state in conn.execute(query):
                    if pairs := json.loads(state)["metadata"]:
                        found[intent_id] = dict(pairs)
        return found

    def intent_batches(self, where: IntentFilter | None = None, *, batch: int = 1_000) -> Iterator[pd.DataFrame]:
        """Every row of the filter, newest first, `batch` rows at a time (a CSV export streams these)."""
        after: PageKey | None = None
        while True:
            page = self.intents_page(where, after=after, limit=batch, counted=False)
            if not page.rows.empty:
                yield page.rows
            if page.next_key is None:
                return
            after = page.next_key

    # -- a period's figures (the Overview), equal to analytics on the same rows -----------------------------

    def overview_figures(self, where: IntentFilter, tz: str, bucket_seconds: int = 60) -> OverviewFigures:
        """analytics.kpis, status_counts, daily_by_status, daily_money and time_to_authorise_buckets of the
        filter's rows (which must bound `created` both ways), from one pass of the database: its rows grouped by
        local day, status, failure kind, whether sent to Alma and the minute Alma took to authorise (a few
        thousand groups however many intents), one query per stretch of constant UTC offset (about two a
        year). The period index answers it without reading the rows themselves."""
        if where.created_gte is None or where.created_lt is None:
            raise ValueError("a period's figures need created_gte and created_lt")
        i = intents.c
        sent = sa.or_(
            i.sent_to_alma_at.is_not(None),
            i.status.in_(analytics.PAST_ALMA_STATUSES),
            i.failure_kind.is_not(None),
        )
        waited = i.authorized_at - i.sent_to_alma_at
        groups: list[_Group] = []
        with self._read() as conn:
            for start, end, offset in constant_offset_spans(where.created_gte, where.created_lt, tz):
                rows = (
                    sa.select(
                        sa.func.floor((i.created + offset) / 86_400.0).label("day"),
                        i.status,
                        i.failure_kind,
                        sa.case((sent, 1), else_=0).label("sent"),
                        sa.case(  # integer floor to the bucket; None when either time is unknown
                            (i.authorized_at.is_(None) | i.sent_to_alma_at.is_(None), None),
                            (waited < 0, 0),
                            else_=waited // bucket_seconds * bucket_seconds,
                        ).label("wait"),
                        i.amount,
                        i.amount_received,
                    )
                    .where(where.clause(), i.created >= start, i.created < end)
                    .subquery()
                )
                keys = (rows.c.day, rows.c.status, rows.c.failure_kind, rows.c.sent, rows.c.wait)
                query = sa.select(
                    *keys, sa.func.count(), sa.func.sum(rows.c.amount), sa.func.sum(rows.c.amount_received)
                ).group_by(*keys)
                for day, status, kind, was_sent, wait, n, cents, received in conn.execute(query):
                    groups.append(
                        _Group(int(day), offset, status, kind, bool(was_sent), wait, int(n), int(cents), int(received))
                    )
        return _overview_of(groups, tz, bucket_seconds)

    def get_intent(self, intent_id: str) -> AlmaIntent | None:
        return self.get_intents([intent_id]).get(intent_id)

    def get_intents(self, intent_ids: Iterable[str]) -> dict[str, AlmaIntent]:
        return {intent_id: stored.intent for intent_id, stored in self.get_stored(intent_ids).items()}

    def get_stored(self, intent_ids: Iterable[str]) -> dict[str, StoredIntent]:
        """The intents with their versions."""
        found: dict[str, StoredIntent] = {}
        columns = (intents.c.id, intents.c.state_json, intents.c.raw_json, intents.c.event_sequence)
        with self._read() as conn:
            for chunk in _chunks(sorted(set(intent_ids))):
                for intent_id, state, raw, sequence in conn.execute(sa.select(*columns).where(intents.c.id.in_(chunk))):
                    found[intent_id] = StoredIntent(_intent_from_json(state, raw), sequence)
        return found

    def all_intents(self) -> list[AlmaIntent]:
        query = sa.select(intents.c.state_json, intents.c.raw_json).order_by(intents.c.created.desc(), intents.c.id)
        with self._read() as conn:
            return [_intent_from_json(state, raw) for state, raw in conn.execute(query)]

    def _known(self, conn: sa.Connection, event_ids: Iterable[str]) -> set[str]:
        known: set[str] = set()
        for chunk in _chunks(sorted(set(event_ids))):
            known.update(conn.execute(sa.select(events_table.c.id).where(events_table.c.id.in_(chunk))).scalars())
        return known

    def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        with self._read() as conn:
            return self._known(conn, event_ids)

    def place_events(self, listing_: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The listing with each event's stream position: a stored one's own, a new one's where save would
        put it now (the sync, the one writer, decides with these before saving)."""
        with self._read() as conn:
            return self._place_events(conn, list(listing_))

    def _place_events(self, conn: sa.Connection, listing_: list[StoredEvent]) -> list[StoredEvent]:
        """Stored events keep their place; a new one goes after the listing's previous event and before its
        next stored one, so an event listed late still reads back in Stripe's order; past every stored event,
        the sequence simply goes on."""
        if not listing_:
            return []
        stored: dict[str, int] = {}
        for chunk in _chunks([e.id for e in listing_]):
            query = sa.select(events_table.c.id, events_table.c.sequence).where(events_table.c.id.in_(chunk))
            stored.update({row[0]: int(row[1]) for row in conn.execute(query)})
        next_stored: list[int | None] = []  # for each position, the sequence of the next stored event after it
        upcoming: int | None = None
        for event in reversed(listing_):
            next_stored.append(upcoming)
            upcoming = stored.get(event.id, upcoming)
        next_stored.reverse()
        last = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events_table.c.sequence), 0))).scalar_one())
        previous: int | None = None
        placed: list[StoredEvent] = []
        for event, upper in zip(listing_, next_stored, strict=True):
            if event.id in stored:
                previous = stored[event.id]
            elif upper is None:
                last += SEQUENCE_STEP
                previous = stored[event.id] = last
            else:
                if previous is None:
                    below = sa.select(sa.func.coalesce(sa.func.max(events_table.c.sequence), 0)).where(
                        events_table.c.sequence < upper
                    )
                    previous = int(conn.execute(below).scalar_one())
                previous = stored[event.id] = (previous + upper) // 2
            placed.append(dataclasses.replace(event, sequence=previous))
        return placed

    def intent_events(self, intent_id: str) -> list[StoredEvent]:
        """Oldest first; same-second events in Stripe's stream order."""
        e = events_table.c
        query = (
            sa.select(e.id, e.type, e.created, e.intent_id, e.sequence)
            .where(e.intent_id == intent_id)
            .order_by(e.created, e.sequence)
        )
        with self._read() as conn:
            return [StoredEvent(*row) for row in conn.execute(query)]

    def intent_timeline(self, intent_id: str) -> list[TimelineEntry]:
        """The stored intent's milestones and events as one list, oldest first ([] for an unknown intent)."""
        intent = self.get_intent(intent_id)
        if intent is None:
            return []
        return intent_timeline(intent, self.intent_events(intent_id), self.auth_window_seconds)

    def count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(intents)).scalar_one())

    def sync_state(self) -> SyncState | None:
        with self._read() as conn:
            row = conn.execute(sa.select(sync_state)).mappings().first()
        return SyncState(**{k: v for k, v in row.items() if k != "singleton"}) if row else None

    def last_synced_at(self) -> int | None:
        state = self.sync_state()
        return state.last_synced_at if state else None

    def version(self) -> int:
        """Grows with every write that changed intents or events: one row to read to notice a change."""
        with self._read() as conn:
            return int(conn.execute(sa.select(store_version.c.version)).scalar() or 0)

    # -- bounded queries (what a page or an alert rule draws, never the whole history) -------------------

    def failure_counts(self, sent_after: int, sent_until: int) -> tuple[int, int, int]:
        """Intents sent to Alma in (sent_after, sent_until]: (sent, declined, expired)."""
        i = intents.c
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((i.failure_kind == "declined", 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((i.failure_kind == "expired", 1), else_=0)), 0),
        ).where(i.sent_to_alma_at > sent_after, i.sent_to_alma_at <= sent_until)
        with self._read() as conn:
            sent, declined, expired = conn.execute(query).one()
        return int(sent), int(declined), int(expired)

    def captures_due(self, deadline_until: int) -> list[tuple[str, int, int]]:
        """Authorisations awaiting capture whose deadline is at or before `deadline_until`, soonest first:
        (id, what capturing would bring in, deadline). An intent listed before its charge was known may show
        0 capturable; then its amount is the honest figure."""
        i = intents.c
        amount = sa.case((i.amount_capturable > 0, i.amount_capturable), else_=i.amount)
        query = (
            sa.select(i.id, amount, i.capture_deadline)
            .where(i.status == "requires_capture", i.capture_deadline <= deadline_until)
            .order_by(i.capture_deadline, i.id)
        )
        with self._read() as conn:
            return [(str(row[0]), int(row[1]), int(row[2])) for row in conn.execute(query)]

    def quarantined(self) -> list[QuarantinedIntent]:
        """Intents the sync could not write, newest seen first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(quarantine).order_by(quarantine.c.last_seen_at.desc())).mappings()
            return [QuarantinedIntent(**row) for row in rows]

    def quarantine_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar_one())

    # -- the audit trail: written by the dashboards' action layer, never by the sync --------------------------

    def add_audit_entry(self, entry: AuditEntry) -> None:
        with dialects.write_transaction(self._engine) as conn:  # not _write(): it is no sync's work
            conn.execute(audit.insert().values(audit_trail.values(entry)))

    def audit_entries(self, wanted: AuditFilter, limit: int | None = None) -> list[AuditEntry]:
        """Matching entries, newest first; at most `limit`."""
        query = (
            sa.select(*audit_trail.COLUMNS)
            .where(*audit_trail.conditions(wanted))
            .order_by(audit.c.at.desc(), audit.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [audit_trail.entry(row) for row in conn.execute(query).mappings()]

    def audit_people(self) -> list[str]:
        """Everyone who appears in the trail, for the Audit page's "who" filter."""
        with self._read() as conn:
            return list(conn.execute(sa.select(audit.c.who).distinct().order_by(audit.c.who)).scalars())

    # -- money (refunds, fees, net) -----------------------------------------------------------------------

    def refunds_of(self, intent_id: str) -> list[Refund]:
        """The intent's refunds, oldest first."""
        query = sa.select(refunds).where(refunds.c.intent_id == intent_id).order_by(refunds.c.created, refunds.c.id)
        with self._read() as conn:
            return [Refund(**row) for row in conn.execute(query).mappings()]

    def money_of(self, intent_ids: Sequence[str]) -> dict[str, IntentMoney]:
        """Fee, net and amount refunded of these intents (those with no money moved are left out)."""
        b = balance_transactions.c
        refunded = sa.func.sum(sa.case((b.type.in_(REFUND_TYPES), -b.amount), else_=0))
        found: dict[str, IntentMoney] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(intent_ids))):
                query = (
                    sa.select(b.intent_id, sa.func.sum(b.fee), sa.func.sum(b.net), refunded)
                    .where(b.intent_id.in_(chunk))
                    .group_by(b.intent_id)
                )
                for intent_id, fee, net, back in conn.execute(query):
                    found[intent_id] = IntentMoney(fee=int(fee), net=int(net), refunded=int(back))
        return found

    def money_moves(self, moved_gte: int, moved_lt: int, *, include_test: bool = False) -> pd.DataFrame:
        """The balance transactions of Alma intents that moved money in [moved_gte, moved_lt), with the
        intent's installments: what finance figures are made of (columns: MONEY_MOVE_COLUMNS)."""
        b, i = balance_transactions.c, intents.c
        query = (
            sa.select(b.id, b.type, b.amount, b.fee, b.net, b.created, b.intent_id, i.installments)
            .join_from(balance_transactions, intents, i.id == b.intent_id)
            .where(b.created >= moved_gte, b.created < moved_lt)
            .order_by(b.created, b.id)
        )
        if not include_test:
            # As IntentFilter says it: IS NOT TRUE drives no index, so the balance's own date index leads.
            query = query.where(i.test_lab.is_not(True))
        with self._read() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return pd.DataFrame(rows, columns=list(MONEY_MOVE_COLUMNS)).astype(MONEY_MOVE_COLUMNS)
