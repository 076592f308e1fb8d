"""The state file in-process: what a round trip keeps, how versions are written, what is refused, and that the
running server saves from a worker thread (requests go on meanwhile)."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dashboard.local_sandbox import SandboxStartError
from dashboard.sandbox import app
from dashboard.sandbox.demo import seed_demo
from dashboard.sandbox.model import CAPTURE_WINDOW_SECONDS, AlmaRules, RefundDraft, Sandbox
from dashboard.sandbox.persistence import Snapshot, StateFile, StateFileError
from dashboard.sandbox.service import SandboxConfig, SandboxService
from tests.conftest import start_sandbox

NOW = 1_790_000_000
RULES = AlmaRules()


@pytest.fixture(scope="module")
def account() -> Sandbox:
    sandbox = Sandbox(RULES)
    seed_demo(sandbox, 300, NOW, seed=7)
    waiting = next(intent for intent in sandbox.intents.values() if intent.status == "requires_action")
    sandbox.update_intent(waiting.id, "Renamed after confirming", {"note": "gift"})  # a version with no event
    return sandbox


def round_trip(sandbox: Sandbox, path: Path, clock_offset: int = 0) -> tuple[Sandbox, int]:
    StateFile(path).save(Snapshot.of(sandbox, clock_offset, generation=1))
    loaded = StateFile(path).load(RULES)
    assert loaded is not None
    return loaded.sandbox, loaded.clock_offset


def test_round_trip_keeps_every_object_the_order_and_the_clock_offset(account: Sandbox, tmp_path: Path) -> None:
    loaded, offset = round_trip(account, tmp_path / "state", clock_offset=4321)
    assert offset == 4321
    assert loaded.intents == account.intents
    assert loaded.charges == account.charges and loaded.payment_methods == account.payment_methods
    assert loaded.events == account.events
    assert loaded.refunds == account.refunds and {r.status for r in loaded.refunds.values()} >= {"succeeded", "failed"}
    assert loaded.balance_transactions == account.balance_transactions and loaded.balance_transactions
    assert any(pm.billing.email for pm in loaded.payment_methods.values())
    for index in ("event_index", "intent_index", "refund_index", "balance_index"):
        assert list(getattr(loaded, index).newest_first()) == list(getattr(account, index).newest_first())
    assert loaded.tokens == account.tokens and loaded.tokens  # open hosted pages still answer
    assert loaded.closed_attempts == account.closed_attempts  # answered ones still say how they ended
    assert {closed.outcome for closed in loaded.closed_attempts.values()} == {"approved", "declined", "expired"}


def test_pending_deadlines_are_rebuilt(tmp_path: Path) -> None:
    original = Sandbox(RULES)
    seed_demo(original, 300, NOW, seed=7)
    paid = next(i for i in original.intents.values() if i.status == "succeeded" and i.id not in refunded(original))
    pending = original.refund(RefundDraft(None, paid.id, 100, None, {}), NOW, None)
    loaded, _ = round_trip(original, tmp_path / "state")
    assert loaded.refunds[pending.id].status == "pending"
    later = NOW + CAPTURE_WINDOW_SECONDS  # every open attempt and every held authorisation lapses by then
    assert loaded.sweep(later) == original.sweep(later) > 0
    assert {i.id: i.status for i in loaded.intents.values()} == {i.id: i.status for i in original.intents.values()}
    assert {"requires_action", "requires_capture"}.isdisjoint(i.status for i in loaded.intents.values())
    assert loaded.refunds[pending.id].status == "succeeded" and loaded.refunds == original.refunds

    def history(sandbox: Sandbox) -> list[tuple[int, str, str]]:
        events = sandbox.events
        return [(events[e].created, events[e].type, events[e].object.id) for e in sandbox.event_index.newest_first()]

    assert history(loaded) == history(original)


def refunded(sandbox: Sandbox) -> set[str]:
    return {refund.payment_intent for refund in sandbox.refunds.values()}


def test_versions_stay_shared_after_loading(account: Sandbox, tmp_path: Path) -> None:
    loaded, _ = round_trip(account, tmp_path / "state")
    for event in loaded.events.values():
        live = loaded.intents.get(event.object.id)
        if live is not None and event.object == live:
            assert event.object is live  # one object, as in the running sandbox
    first_versions = {}
    for event in loaded.events.values():
        first_versions.setdefault(event.object.id, event.object)
    for intent in loaded.intents.values():
        assert intent.client_secret is first_versions[intent.id].client_secret  # unchanged fields are shared


def test_later_versions_are_written_as_their_changes(account: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "state"
    StateFile(path).save(Snapshot.of(account, 0, generation=1))
    header, *chunks = [json.loads(line) for line in path.read_text().splitlines()]
    assert header["format"] == "alma-sandbox-state" and "client_secret" in header["columns"]["PaymentIntent"]
    rows = [row for section, rows in chunks if section == "payment_intent_versions" for row in rows]
    deltas = [row for row in rows if isinstance(row, dict)]
    assert len(rows) > len(account.intents) and len(deltas) == len(rows) - len(account.intents)
    assert all("base" in delta and "client_secret" not in delta and "id" not in delta for delta in deltas)
    assert {"base", "status"} <= set(next(delta for delta in deltas if delta.get("status") == "succeeded"))


def test_an_older_snapshot_never_replaces_a_newer_file(account: Sandbox, tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state")
    older = Snapshot.of(account, 1, generation=1)
    assert state.save(Snapshot.of(account, 2, generation=2)) is True
    assert state.save(older) is False  # e.g. the periodic thread finishing after the save at shutdown
    loaded = StateFile(tmp_path / "state").load(RULES)
    assert loaded is not None and loaded.clock_offset == 2


class _Payload:
    """A pickle that would write a file when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_pickle_is_refused_without_being_run(tmp_path: Path) -> None:
    state, marker = tmp_path / "state", tmp_path / "ran"
    state.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(StateFileError) as refused:
        StateFile(state).load(RULES)
    assert str(state) in str(refused.value) and "Move or delete it" in str(refused.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda lines: ['{"format": "something else"}', *lines[1:]], "not an Alma sandbox state file"),
        (lambda lines: [lines[0].replace('"client_secret",', ""), *lines[1:]], "another version of the sandbox"),
        (lambda lines: [*lines[:-1], lines[-1][: len(lines[-1]) // 2]], "cannot read"),
        (lambda lines: [], "not an Alma sandbox state file"),
    ],
)
def test_a_damaged_or_foreign_file_is_refused_with_the_reason(
    account: Sandbox, tmp_path: Path, damage: Callable[[list[str]], list[str]], reason: str
) -> None:
    path = tmp_path / "state"
    StateFile(path).save(Snapshot.of(account, 0, generation=1))
    path.write_text("\n".join(damage(path.read_text().splitlines())))
    with pytest.raises(StateFileError, match=reason):
        StateFile(path).load(RULES)


def test_the_sandbox_refuses_to_start_on_an_unreadable_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_bytes(pickle.dumps({"not": "json"}))
    with pytest.raises(SandboxStartError, match="cannot read the state file"):
        start_sandbox("--state", str(state), timeout=30)
    assert state.read_bytes() == pickle.dumps({"not": "json"})  # left as it was, for its owner to decide


def test_the_periodic_save_runs_in_a_worker_thread_while_the_loop_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SandboxService(SandboxConfig(state_path=tmp_path / "state", seed_demo=20))
    assert service.state_file is not None
    loop_served = threading.Event()
    saved_on: list[threading.Thread] = []
    loop_threads: list[threading.Thread] = []
    real_save = service.state_file.save

    def slow_save(snapshot: Snapshot) -> bool:
        saved_on.append(threading.current_thread())
        assert loop_served.wait(timeout=10), "the event loop did not run while the save was in progress"
        return real_save(snapshot)

    monkeypatch.setattr(service.state_file, "save", slow_save)
    monkeypatch.setattr(app, "SAVE_INTERVAL_SECONDS", 0.01)

    async def scenario() -> None:
        loop_threads.append(threading.current_thread())
        saving = asyncio.create_task(app.save_periodically(service, service.state_file))
        while not saved_on:
            await asyncio.sleep(0.01)
        loop_served.set()  # the loop got here while the save was still waiting
        while not (tmp_path / "state").exists():
            await asyncio.sleep(0.01)
        saving.cancel()

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert saved_on[0] is not loop_threads[0]
    assert service.dirty is False
    loaded = StateFile(tmp_path / "state").load(RULES)
    assert loaded is not None and len(loaded.sandbox.intents) == 20
