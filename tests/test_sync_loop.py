"""The embedded sync loop on its own: a real sync against the sandbox over HTTP, into a real store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.store import IntentStore
from dashboard.sync import AlmaSync
from dashboard.sync_loop import SyncLoop
from tests.test_sync import create

# Long enough that only the test's own requests start a sync after the first one.
IDLE_INTERVAL = 3_600
WAIT = 30.0
DISCARD_PORT = 9  # nothing listens there: connections are refused at once


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntentStore]:
    opened = IntentStore(tmp_path / "alma.sqlite3", AUTH_WINDOW_SECONDS)
    yield opened
    opened.close()


@pytest.fixture
def gateway(sandbox: LocalSandbox) -> StripeGateway:
    return StripeGateway(Settings(), api_base=sandbox.base_url)


@pytest.fixture
def loop_of(sandbox: LocalSandbox, gateway: StripeGateway, store: IntentStore) -> Iterator[type[SyncLoop]]:
    """Starts loops on the sandbox and the store, and stops every one of them after the test."""
    started: list[SyncLoop] = []

    class Started(SyncLoop):
        def __init__(self, sync: AlmaSync | None = None, interval_seconds: int = IDLE_INTERVAL) -> None:
            super().__init__(sync or AlmaSync(gateway, store, sandbox), interval_seconds)
            started.append(self)

    yield Started
    for loop in started:
        loop.stop()


def test_the_first_sync_starts_at_once_and_reports_its_progress(
    sandbox: LocalSandbox, store: IntentStore, loop_of: type[SyncLoop]
) -> None:
    sandbox.reset(seed_demo=150)
    loop = loop_of()
    assert loop.wait_first(WAIT)
    status = loop.status()
    assert status.attempts_finished == 1 and status.last_error is None and status.progress is None
    assert status.last_result is not None and status.last_result.kind == "full"
    assert status.last_result.intents_written == 150 == store.count()
    assert loop.generation == 1  # the first sync always gives the frame cache its first key


def test_sync_now_waits_for_a_sync_that_starts_after_the_request(
    gateway: StripeGateway, store: IntentStore, loop_of: type[SyncLoop]
) -> None:
    loop = loop_of()
    assert loop.wait_first(WAIT)
    created = create(gateway, "after-first")
    assert store.get_intent(created.id) is None
    assert loop.sync_now(WAIT)
    assert store.get_intent(created.id) is not None
    assert loop.generation == 2  # the store changed
    assert loop.sync_now(WAIT)
    assert loop.generation == 2  # nothing new: cached frames stay valid
    assert loop.status().attempts_finished == 3


def test_refresh_skips_a_sync_when_one_finished_recently(
    sandbox: LocalSandbox, gateway: StripeGateway, store: IntentStore, loop_of: type[SyncLoop]
) -> None:
    loop = loop_of()
    assert loop.wait_first(WAIT)
    before = sandbox.request_count()
    loop.refresh(max_age_seconds=600)  # many viewers polling: one refresh per interval, not one each
    assert sandbox.request_count() == before and loop.status().attempts_finished == 1
    created = create(gateway, "refresh")
    loop.refresh(max_age_seconds=0)  # asks for a sync and returns: the page draws what is stored meanwhile
    deadline = time.monotonic() + WAIT
    while loop.status().attempts_finished < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loop.status().attempts_finished == 2 and store.get_intent(created.id) is not None


def test_a_failed_sync_is_reported_and_the_next_one_clears_it(
    sandbox: LocalSandbox, store: IntentStore, loop_of: type[SyncLoop]
) -> None:
    dead_end = StripeGateway(Settings(), api_base=f"http://127.0.0.1:{DISCARD_PORT}")
    failing = loop_of(AlmaSync(dead_end, store, sandbox))
    assert failing.wait_first(WAIT)
    status = failing.status()
    assert status.last_result is None and status.last_error is not None
    assert "Traceback" not in status.last_error and store.last_synced_at() is None
    assert failing.generation == 0

    loop = loop_of()  # the same store, a gateway that answers: the error is history
    assert loop.wait_first(WAIT)
    assert loop.status().last_error is None and store.last_synced_at() is not None


def test_an_unexpected_error_does_not_end_the_loop(
    gateway: StripeGateway, store: IntentStore, loop_of: type[SyncLoop]
) -> None:
    gone = LocalSandbox.attach(f"http://127.0.0.1:{DISCARD_PORT}")  # its clock raises URLError, not GatewayError
    loop = loop_of(AlmaSync(gateway, store, gone))
    assert loop.wait_first(WAIT)
    assert loop.status().last_error == "URLError: the sync failed; see the server log."
    assert loop.sync_now(WAIT) and loop.status().attempts_finished == 2  # still running


def test_stop_ends_the_thread(loop_of: type[SyncLoop]) -> None:
    loop = loop_of()
    assert loop.wait_first(WAIT)
    loop.stop()
    assert not loop.sync_now(timeout=0.5)  # nobody left to answer
