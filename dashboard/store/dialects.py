"""Everything that differs between SQLite and PostgreSQL, in one place: opening the engine (SQLite: WAL, a
0600 file, BEGIN IMMEDIATE for writes), the upsert statement, and the locks (migrations and the one writer).
Everything else in the store is plain SQLAlchemy Core that both speak."""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dashboard.store.location import StoreLocation
from dashboard.store.schema import writer

# Writes wait this long for another writer's transaction before failing (SQLite busy timeout).
BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
_SQLITE_FILES = ("", "-wal", "-shm")
# Advisory lock keys, per database; any fixed 64-bit numbers will do.
_MIGRATION_LOCK = zlib.crc32(b"alma_ops.migrations")
_WRITER_LOCK = zlib.crc32(b"alma_ops.writer")


def _private_sqlite_file(path: Path) -> None:
    """The store holds payment data: its file (and so its WAL and shared memory, which SQLite creates with
    the database file's mode) is readable by its owner only."""
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in _SQLITE_FILES:
        existing = path.with_name(path.name + suffix)
        if existing.exists() and existing.stat().st_uid == os.geteuid():
            existing.chmod(0o600)


def create_engine(location: StoreLocation) -> sa.Engine:
    if location.sqlite_path is None:
        # A server that drops packets is a clear error within seconds, not a start that hangs.
        connect = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        return sa.create_engine(location.url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect)
    _private_sqlite_file(location.sqlite_path)
    engine = sa.create_engine(location.url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")  # readers run while the sync writes
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A write takes SQLite's write lock at BEGIN, so two writers queue instead of failing mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def upsert(conn: sa.Connection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT for this connection's dialect (both offer on_conflict_do_update/do_nothing)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def metadata_keys(conn: sa.Connection, state_json: sa.Column[str], where: sa.ColumnElement[bool]) -> list[str]:
    """The distinct metadata keys of the rows matching `where`, read inside their stored state (JSON text
    whose "metadata" is a list of [key, value] pairs) by the database: each dialect spells JSON its own way."""
    if conn.dialect.name == "postgresql":
        pairs = sa.func.jsonb_array_elements(sa.cast(state_json, postgresql.JSONB)["metadata"]).table_valued("value")
        key: sa.ColumnElement[Any] = pairs.c.value.op("->>")(0)
    else:
        pairs = sa.func.json_each(state_json, "$.metadata").table_valued("value")
        key = sa.func.json_extract(pairs.c.value, "$[0]")
    query = sa.select(key).select_from(state_json.table).join(pairs, sa.true()).where(where).distinct()
    return sorted(str(value) for value in conn.execute(query).scalars())


def refresh_statistics(engine: sa.Engine) -> None:
    """After a bulk load: the planner's statistics, and on PostgreSQL the visibility map that lets the pages'
    covering indexes answer without visiting the rows (autovacuum would get there, a while later)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def lock_for_migration(conn: sa.Connection) -> None:
    """Two processes starting on a new database create its schema once. SQLite: BEGIN IMMEDIATE already
    serialises; PostgreSQL: a transaction-level advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))


@dataclass(frozen=True)
class WriterIdentity:
    owner: str  # role@host:pid:token, unique per store object
    role: str
    host: str
    pid: int


def writer_identity(role: str, token: str) -> WriterIdentity:
    host, pid = socket.gethostname(), os.getpid()
    return WriterIdentity(f"{role}@{host}:{pid}:{token}", role, host, pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """The one-writer lock. PostgreSQL: a session advisory lock on a connection held while syncing (the
    server frees it if the process dies). SQLite: the `writer` row with a lease, renewed on each save, taken
    over once the lease ran out or its process on this host is gone."""

    def __init__(self, engine: sa.Engine, me: WriterIdentity, lease_seconds: int) -> None:
        self._engine = engine
        self._me = me
        self._lease = lease_seconds
        self._held: sa.Connection | None = None  # PostgreSQL: the session holding the advisory lock
        self.held = False

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def _record(self, conn: sa.Connection, now: int) -> None:
        values = {
            "owner": self._me.owner,
            "role": self._me.role,
            "host": self._me.host,
            "pid": self._me.pid,
            "acquired_at": now,
            "lease_until": now + self._lease,
        }
        statement = upsert(conn, writer).values(singleton=1, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=["singleton"], set_=values))

    def acquire(self, now: int) -> bool:
        if self.held:
            return True
        if self.postgres:
            session = self._engine.connect()
            if not session.execute(sa.select(sa.func.pg_try_advisory_lock(_WRITER_LOCK))).scalar_one():
                session.rollback()
                session.close()
                return False
            session.commit()
            self._held = session
            with self._engine.begin() as conn:
                self._record(conn, now)
        else:
            with self._engine.connect().execution_options(write=True) as conn, conn.begin():
                row = conn.execute(sa.select(writer)).mappings().first()
                if row is not None and row["owner"] != self._me.owner and not self._stale(row, now):
                    return False
                self._record(conn, now)
        self.held = True
        return True

    def _stale(self, row: Any, now: int) -> bool:
        return row["lease_until"] < now or (row["host"] == self._me.host and not _pid_alive(row["pid"]))

    def renew(self, conn: sa.Connection, now: int) -> None:
        """Inside a write transaction: SQLite extends the lease (and refuses to write if another writer took
        it over); PostgreSQL's lock needs no renewal."""
        if self.postgres or not self.held:
            return
        renewed = conn.execute(
            writer.update().where(writer.c.owner == self._me.owner).values(lease_until=now + self._lease)
        )
        if renewed.rowcount != 1:
            self.held = False
            raise WriterLockLost("another writer took the store over (this writer's lease ran out)")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.postgres:
            with self._engine.begin() as conn:
                conn.execute(writer.delete().where(writer.c.owner == self._me.owner))
            if self._held is not None:
                try:
                    self._held.execute(sa.select(sa.func.pg_advisory_unlock(_WRITER_LOCK)))
                    self._held.commit()
                finally:
                    self._held.close()
                    self._held = None
        else:
            with self._engine.connect().execution_options(write=True) as conn, conn.begin():
                conn.execute(writer.delete().where(writer.c.owner == self._me.owner))

    def holder(self, conn: sa.Connection, now: int) -> str | None:
        """Who holds the lock now (None: nobody)."""
        row = conn.execute(sa.select(writer)).mappings().first()
        if row is None:
            return None
        if self.postgres:
            held = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND granted"),
                {"key": _WRITER_LOCK},
            ).scalar_one()
            return row["owner"] if held else None
        return None if self._stale(row, now) else row["owner"]


class WriterLockLost(RuntimeError):
    pass


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        yield conn


def continue_numbering(conn: sa.Connection, table: sa.Table) -> None:
    """After rows were inserted with their own ids: PostgreSQL's sequence would hand out those ids again, so
    it moves past the largest; SQLite numbers from the largest rowid by itself."""
    if conn.dialect.name != "postgresql":
        return
    for column in table.primary_key.columns:
        if column.autoincrement is True:
            sequence = sa.func.pg_get_serial_sequence(table.name, column.name)
            after = sa.func.coalesce(sa.func.max(column), 0) + 1
            conn.execute(sa.select(sa.func.setval(sequence, after, False)).select_from(table))
