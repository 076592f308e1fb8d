"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary data folder owned by
the `postgres` user (initdb refuses root), TCP on 127.0.0.1 and a free port, removed when stopped.

`make test` installs Debian's postgresql package when initdb is missing; without it this raises, so a machine
without PostgreSQL fails the PostgreSQL tests instead of skipping them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

from dashboard.local_sandbox import free_port


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make test`, which installs"
            " Debian's postgresql package, or `apt-get install postgresql`."
        )
    return Path(candidates[-1]).parent


class PostgresServer:
    """One server; `create_database()` gives each test a fresh, empty database."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="alma-ops-pg-"))
        self._data = self._root / "data"
        # initdb and postgres refuse to run as root: as root, run them as the postgres user.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(self._root, "postgres", "postgres")
        self._started = False
        self._databases = 0
        try:
            self._run("initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
            self._start()
        except BaseException:
            self.stop()
            raise

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_user, str(self._bin / program), *args], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise PostgresUnavailable(f"{program} failed ({done.returncode}): {done.stderr[-2000:]}")

    def _start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self._root} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        log = self._root / "server.log"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self._data), "-l", str(log), "-o", options)
        self._started = True

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database; its URL."""
        self._databases += 1
        name = f"alma_test_{self._databases}"
        engine = sa.create_engine(self.url("postgres"), poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        if self._started:
            self._started = False
            # fast: end the connections tests left open rather than wait for them
            self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self._data))
        shutil.rmtree(self._root, ignore_errors=True)
