"""Command-line options that need their own sandbox process: --state, --auth-window, --seed-demo."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import stripe

from tests.conftest import start_sandbox, stop_sandbox
from tests.sandbox.support import SEND_TO_ALMA, sandbox_client, submit_hosted_page


def test_state_file_survives_a_restart_with_the_clock_offset(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.state"
    first = start_sandbox("--state", str(state))
    try:
        client = sandbox_client(first)
        waiting = client.v1.payment_intents.create(SEND_TO_ALMA)
        paid = client.v1.payment_intents.create(SEND_TO_ALMA)
        submit_hosted_page(paid.next_action.redirect_to_url.url, "authorize")
        first.advance(600)
        events_before = [event.id for event in client.v1.events.list({"limit": 100}).data]
    finally:
        stop_sandbox(first)
    assert state.exists()

    second = start_sandbox("--state", str(state))
    try:
        client = sandbox_client(second)
        assert second.control("GET", "/_sandbox/clock")["offset"] == 600
        assert [event.id for event in client.v1.events.list({"limit": 100}).data] == events_before
        assert client.v1.payment_intents.retrieve(paid.id).status == "succeeded"
        restored = client.v1.payment_intents.retrieve(waiting.id)
        assert restored.status == "requires_action"
        # same attempt token; the host part follows the new process's port
        restored_page = urlsplit(restored.next_action.redirect_to_url.url).path
        assert restored_page == urlsplit(waiting.next_action.redirect_to_url.url).path
        submit_hosted_page(restored.next_action.redirect_to_url.url, "authorize")  # the open attempt still works
        assert client.v1.payment_intents.retrieve(waiting.id).status == "succeeded"
        second.advance(3600)  # and deadlines still fire after a restart
        other = client.v1.payment_intents.create(SEND_TO_ALMA)
        second.advance(3601)
        assert client.v1.payment_intents.retrieve(other.id).status == "requires_payment_method"
    finally:
        stop_sandbox(second)


def test_state_is_written_soon_after_a_change_so_a_crash_keeps_it(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.state"
    server = start_sandbox("--state", str(state))
    try:
        intent = sandbox_client(server).v1.payment_intents.create(SEND_TO_ALMA)
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert server.process is not None
        server.process.kill()  # no graceful shutdown: only the periodic save can have kept the intent
        server.process.wait()
        stop_sandbox(server)
    restarted = start_sandbox("--state", str(state))
    try:
        assert sandbox_client(restarted).v1.payment_intents.retrieve(intent.id).status == "requires_action"
    finally:
        stop_sandbox(restarted)


def test_auth_window_option_sets_the_expiry() -> None:
    server = start_sandbox("--auth-window", "60")
    try:
        client = sandbox_client(server)
        intent = client.v1.payment_intents.create(SEND_TO_ALMA)
        # Wall time runs on under the offset: aim 3 s short of the deadline, wherever the clock now is.
        server.advance(max(0, intent.created + 60 - 3 - server.now()))
        assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"
        server.advance(4)
        assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
        failed = client.v1.events.list({"type": "payment_intent.payment_failed"}).data[0]
        confirmed = client.v1.events.list({"type": "payment_intent.requires_action"}).data[0]
        assert failed.created == confirmed.created + 60
    finally:
        stop_sandbox(server)


def test_amount_limit_options() -> None:
    server = start_sandbox("--min-amount", "1000", "--max-amount", "2000")
    try:
        client = sandbox_client(server)
        assert client.v1.payment_intents.create({**SEND_TO_ALMA, "amount": 1_000}).status == "requires_action"
        try:
            client.v1.payment_intents.create({**SEND_TO_ALMA, "amount": 2_001})
        except stripe.InvalidRequestError as error:
            assert error.code == "amount_too_large"
        else:
            raise AssertionError("2,001 cents passed a 2,000-cent maximum")
    finally:
        stop_sandbox(server)


def test_seed_demo_option_is_loaded_before_health_answers() -> None:
    server = start_sandbox("--seed-demo", "150")
    try:
        assert server.control("GET", "/_sandbox/health")["intents"] == 150
    finally:
        stop_sandbox(server)
