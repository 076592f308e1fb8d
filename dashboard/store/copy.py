"""Move a store to another database, typically a laptop's SQLite file to the team's PostgreSQL:

    python -m dashboard.store.copy --from .data/alma_ops.sqlite3 --to postgresql+psycopg://user:pass@host/db

Both ends are opened as the app opens them, so the source is migrated to the current schema and the target is
created at it; then every table is copied row for row (cursor, listing progress, audit trail included), in one
transaction on the target. A target that already holds data is refused: nothing is merged or overwritten. Both
writer locks are held meanwhile, so no sync changes either end during the copy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import dialects
from dashboard.store.intent_store import IntentStore, StoreError
from dashboard.store.location import StoreConfigError, StoreLocation, parse_location
from dashboard.store.schema import audit, events, intents, listing, meta, metadata, quarantine, sync_state

BATCH_ROWS = 5_000
# Rows that mean a store holds data; the target must have none. (meta, store_version and the like are seeded
# by creating the schema and are replaced by the source's.)
DATA_TABLES = (intents, events, sync_state, listing, quarantine, audit)
# Not copied: the schema version is the target's own, and a writer lease belongs to a process on the source.
NOT_COPIED = frozenset({"schema_version", "writer"})
_DERIVED_WITH_KEY = "derived_with_auth_window_seconds"


class CopyRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]  # table -> rows now in the target

    def summary(self) -> str:
        return ", ".join(f"{table} {count:,}" for table, count in self.rows.items())


def _auth_window_of(location: StoreLocation) -> int:
    """The auth window the source's derived columns were computed with: opening it with another would rewrite
    every row of the source."""
    engine = dialects.create_engine(location)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(meta.name):
                return AUTH_WINDOW_SECONDS
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == _DERIVED_WITH_KEY)).scalar()
    finally:
        engine.dispose()
    return int(value) if value is not None else AUTH_WINDOW_SECONDS


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def copy_store(source: str, target: str) -> CopyReport:
    """Copy every table of `source` into the empty store at `target` (paths or URLs, as ALMA_OPS_DB)."""
    source_location, target_location = parse_location(source), parse_location(target)
    if source_location.url == target_location.url:
        raise CopyRefused("--from and --to name the same store.")
    if source_location.sqlite_path is not None and not source_location.sqlite_path.exists():
        raise CopyRefused(f"--from: no store at {source_location.sqlite_path}.")
    window = _auth_window_of(source_location)
    stores = [IntentStore(source_location, window, role="copy"), IntentStore(target_location, window, role="copy")]
    engines = [dialects.create_engine(source_location), dialects.create_engine(target_location)]
    try:
        for store, end in zip(stores, ("--from", "--to"), strict=True):
            if not store.acquire_writer():
                raise CopyRefused(f"{end}: {store.current_writer()} is syncing that store; stop it first.")
        with engines[0].connect() as reader, dialects.write_transaction(engines[1]) as writer:
            if filled := [table.name for table in DATA_TABLES if _count(writer, table)]:
                raise CopyRefused(f"--to already holds data ({', '.join(filled)}): give an empty database.")
            rows: dict[str, int] = {}
            for table in metadata.sorted_tables:
                if table.name in NOT_COPIED:
                    continue
                writer.execute(table.delete())
                result = reader.execution_options(yield_per=BATCH_ROWS).execute(sa.select(table))
                for batch in result.mappings().partitions():
                    writer.execute(table.insert(), [dict(row) for row in batch])
                dialects.continue_numbering(writer, table)
                rows[table.name] = _count(writer, table)
        dialects.refresh_statistics(engines[1])
        return CopyReport(rows)
    finally:
        for engine in engines:
            engine.dispose()
        for store in stores:
            store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.store.copy", description="Copy an Alma Ops store into an empty database."
    )
    parser.add_argument("--from", dest="source", required=True, metavar="PATH_OR_URL", help="the store to copy")
    parser.add_argument("--to", dest="target", required=True, metavar="PATH_OR_URL", help="an empty database")
    args = parser.parse_args(argv)
    try:
        report = copy_store(args.source, args.target)
    except (CopyRefused, StoreConfigError, StoreError) as error:
        print(f"not copied: {error}", file=sys.stderr)
        return 2
    print(f"copied into {parse_location(args.target)}: {report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
