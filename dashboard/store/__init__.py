"""The store: SQLAlchemy Core on SQLite (embedded default) or PostgreSQL (teams). See intent_store.py for
what it keeps, dialects.py for the few statements that differ, schema.py for tables and migrations."""

from dashboard.store.dialects import WriterLockLost
from dashboard.store.intent_store import (
    WRITER_LEASE_SECONDS,
    IntentMoney,
    IntentPage,
    IntentStore,
    IntentTotals,
    ListingProgress,
    OverviewFigures,
    QuarantinedIntent,
    StoredEvent,
    StoredIntent,
    StoreError,
    SyncState,
    WriterStatus,
)
from dashboard.store.location import DEFAULT_LOCATION, ENV_NAME, StoreConfigError, StoreLocation, parse_location
from dashboard.store.queries import SORT_COLUMNS, IntentFilter, PageKey, SortColumn
from dashboard.store.schema import MIGRATIONS, SCHEMA_VERSION, SEQUENCE_STEP, SchemaTooNew

__all__ = [
    "DEFAULT_LOCATION",
    "ENV_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEQUENCE_STEP",
    "WRITER_LEASE_SECONDS",
    "IntentFilter",
    "IntentPage",
    "IntentMoney",
    "IntentStore",
    "IntentTotals",
    "OverviewFigures",
    "PageKey",
    "SORT_COLUMNS",
    "SortColumn",
    "ListingProgress",
    "QuarantinedIntent",
    "SchemaTooNew",
    "StoreConfigError",
    "StoreError",
    "StoreLocation",
    "StoredEvent",
    "StoredIntent",
    "SyncState",
    "WriterLockLost",
    "WriterStatus",
    "parse_location",
]
