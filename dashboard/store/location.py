"""Where the store lives, from ALMA_OPS_DB: a file path (SQLite) or a URL (sqlite:///…, postgresql://…).

Parsing creates nothing: an unusable value is refused here, before any file, folder or connection is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ENV_NAME = "ALMA_OPS_DB"
DEFAULT_LOCATION = ".data/alma_ops.sqlite3"
_URL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# postgresql:// and postgres:// mean psycopg 3, the only PostgreSQL driver we ship.
_POSTGRES_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_SUPPORTED = ("sqlite", "postgresql+psycopg")


class StoreConfigError(ValueError):
    """ALMA_OPS_DB cannot be used; the message names the variable."""


@dataclass(frozen=True)
class StoreLocation:
    url: sa.URL
    sqlite_path: Path | None  # the database file, for SQLite; None for a server

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def __str__(self) -> str:  # never the password
        return self.url.render_as_string(hide_password=True)


def parse_location(value: str | Path) -> StoreLocation:
    """A path or a URL; raises StoreConfigError naming ALMA_OPS_DB."""
    text = str(value).strip()
    if not text:
        raise StoreConfigError(f"{ENV_NAME} is empty: give a file path or a database URL.")
    if not _URL_PREFIX.match(text):
        return StoreLocation(sa.URL.create("sqlite", database=text), Path(text))
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise StoreConfigError(f"{ENV_NAME} is not a valid database URL.") from None
    drivername = _POSTGRES_DRIVERS.get(url.drivername, url.drivername)
    if drivername == "sqlite+pysqlite":
        drivername = "sqlite"
    if drivername not in _SUPPORTED:
        raise StoreConfigError(
            f"{ENV_NAME} uses {url.drivername!r}: use a file path, sqlite:///path/to/file or"
            " postgresql+psycopg://user:password@host:port/database."
        )
    url = url.set(drivername=drivername)
    if drivername == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StoreConfigError(f"{ENV_NAME}: a SQLite URL needs a file (sqlite:///path/to/file), not memory.")
        return StoreLocation(url, Path(url.database))
    if not url.database or not url.host:
        raise StoreConfigError(f"{ENV_NAME}: a PostgreSQL URL needs a host and a database name.")
    return StoreLocation(url, None)
