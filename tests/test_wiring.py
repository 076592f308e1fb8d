"""The services for a mode, as the app and `python -m dashboard.sync` both build them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.clock import SystemClock
from dashboard.settings import Mode, Settings, SettingsError
from dashboard.wiring import build_services, demo_seed_file, demo_seed_note
from tests.conftest import TEST_KEY, SandboxServer
from tests.test_sync import create


def test_local_mode_attached_reads_the_sandbox_and_its_clock(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "store" / "alma.sqlite3"), sandbox_url=sandbox.base_url)
    services = build_services(settings, may_start_sandbox=False)
    try:
        created = create(services.gateway, "wired")
        assert services.gateway.retrieve_intent(created.id).id == created.id
        before = services.clock.now()
        sandbox.advance(600)
        assert services.clock.now() >= before + 600  # the sandbox's time, not the machine's
        assert services.store.count() == 0 and settings.db_path.exists()
    finally:
        services.close()
    assert sandbox.now() > 0  # attached, so closing left it running


def test_a_worker_in_local_mode_never_starts_a_sandbox_of_its_own(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "store" / "alma.sqlite3"))
    with pytest.raises(SettingsError, match="ALMA_OPS_SANDBOX_URL"):
        build_services(settings, may_start_sandbox=False)
    assert not settings.db_path.parent.exists()  # refused before anything was made


def test_stripe_modes_use_the_key_the_api_base_and_system_time(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = Settings(secret_key=TEST_KEY, api_base=sandbox.base_url, db=str(tmp_path / "alma.sqlite3"))
    services = build_services(settings, may_start_sandbox=True)
    try:
        assert services.sandbox is None and isinstance(services.clock, SystemClock)
        assert services.gateway.mode is Mode.TEST
        created = create(services.gateway, "test-mode")
        assert services.gateway.retrieve_intent(created.id).amount == created.amount
    finally:
        services.close()


def sandbox_intent_count(settings: Settings) -> int:
    services = build_services(settings, may_start_sandbox=True)
    try:
        return sum(len(page) for page in services.gateway.list_intents(0))
    finally:
        services.close()


def test_a_changed_demo_count_reseeds_the_embedded_sandbox(tmp_path: Path) -> None:
    store = str(tmp_path / "alma.sqlite3")
    assert sandbox_intent_count(Settings(db=store, demo_intents=3)) == 3
    assert sandbox_intent_count(Settings(db=store, demo_intents=3)) == 3  # the same count keeps the account
    assert demo_seed_note(Settings(db=store, demo_intents=3)) is None
    assert sandbox_intent_count(Settings(db=store, demo_intents=5)) == 5


def test_an_account_of_unknown_seed_is_kept_and_the_sidebar_says_how_to_start_over(tmp_path: Path) -> None:
    store = str(tmp_path / "alma.sqlite3")
    assert sandbox_intent_count(Settings(db=store, demo_intents=2)) == 2
    demo_seed_file(Settings(db=store)).unlink()  # as saved before the count was recorded
    assert sandbox_intent_count(Settings(db=store, demo_intents=4)) == 2
    note = demo_seed_note(Settings(db=store, demo_intents=4))
    assert note is not None and "ALMA_OPS_DEMO_INTENTS=4 was not applied" in note and "make reset" in note
