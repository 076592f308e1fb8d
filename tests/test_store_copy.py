"""python -m dashboard.store.copy: a synced SQLite store moved to PostgreSQL, whole and usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.audit import CREATE_INTENT, OK, AuditEntry, AuditFilter
from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.store import IntentStore
from dashboard.store.copy import main as copy_main
from dashboard.sync import AlmaSync
from tests.pages.conftest import create_intent
from tests.postgres_server import PostgresServer


def _audit(at: int, intent_id: str) -> AuditEntry:
    return AuditEntry(
        at=at, who="ops@example.com", role="operator", action=CREATE_INTENT, outcome=OK, intent_id=intent_id
    )


def test_a_synced_sqlite_store_moves_to_postgresql_whole(
    tmp_path: Path, sandbox: LocalSandbox, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = StripeGateway(Settings(), api_base=sandbox.base_url)
    ids = [create_intent(gateway, amount).intent.id for amount in (10_000, 20_000, 30_000)]
    source_file = tmp_path / "alma_ops.sqlite3"
    source = IntentStore(source_file, AUTH_WINDOW_SECONDS)
    AlmaSync(gateway, source, sandbox, lookback_days=90).sync_once()
    source.add_audit_entry(_audit(sandbox.now(), ids[0]))
    source.close()
    target_url = postgres_server.create_database()

    assert copy_main(["--from", str(source_file), "--to", target_url]) == 0
    reported = capsys.readouterr().out
    assert "intents 3" in reported and "audit 1" in reported and "password" not in reported

    source, target = IntentStore(source_file, AUTH_WINDOW_SECONDS), IntentStore(target_url, AUTH_WINDOW_SECONDS)
    assert target.dialect == "postgresql"
    assert target.intents_frame().equals(source.intents_frame())
    assert target.sync_state() == source.sync_state()
    assert [target.intent_events(i) for i in ids] == [source.intent_events(i) for i in ids]
    assert target.version() == source.version()
    # The audit trail keeps numbering after the copied rows instead of colliding with them.
    target.add_audit_entry(_audit(sandbox.now() + 1, ids[1]))
    assert len(target.audit_entries(AuditFilter())) == 2
    # The copied cursor is the target's: the next sync is a refresh that finds the new intent.
    newcomer = create_intent(gateway, 40_000).intent
    result = AlmaSync(gateway, target, sandbox, lookback_days=90).sync_once()
    assert result.kind == "refresh" and newcomer.id in set(target.intents_frame()["id"])
    source.close()
    target.close()


def test_a_target_with_data_is_refused_and_left_as_it_was(
    tmp_path: Path, sandbox: LocalSandbox, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = StripeGateway(Settings(), api_base=sandbox.base_url)
    create_intent(gateway, 10_000)
    source_file = tmp_path / "alma_ops.sqlite3"
    source = IntentStore(source_file, AUTH_WINDOW_SECONDS)
    AlmaSync(gateway, source, sandbox, lookback_days=90).sync_once()
    source.close()
    target_url = postgres_server.create_database()
    target = IntentStore(target_url, AUTH_WINDOW_SECONDS)
    target.add_audit_entry(_audit(sandbox.now(), "pi_already_there"))

    assert copy_main(["--from", str(source_file), "--to", target_url]) == 2
    assert "already holds data (audit)" in capsys.readouterr().err
    assert target.count() == 0 and len(target.audit_entries(AuditFilter())) == 1
    target.close()


def test_a_missing_source_is_refused_without_creating_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing.sqlite3"
    assert copy_main(["--from", str(missing), "--to", str(tmp_path / "to.sqlite3")]) == 2
    assert "no store at" in capsys.readouterr().err and not missing.exists()
