"""Test lab against the sandbox: form validation creates nothing, one submission creates one intent, and the
cancel / capture / clock actions change the sandbox's intents as they say."""

from __future__ import annotations

import dataclasses

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from dashboard.domain import AlmaIntent
from dashboard.gateway import StripeGateway
from dashboard.store import IntentStore
from tests.conftest import SandboxServer, start_sandbox, stop_sandbox
from tests.pages.conftest import (
    PUBLIC_URL,
    clear_app_caches,
    create_intent,
    open_app,
    press_hosted_button,
    sandbox_intents,
)

PAGE = "app_pages/lab.py"


def button(at: AppTest, label: str, index: int = 0) -> Button:
    return [b for b in at.button if b.label == label][index]


def submit_form(
    at: AppTest, amount: str, capture: str = "automatic", description: str = "", metadata: str = ""
) -> AppTest:
    at.text_input(key="lab_amount").input(amount)
    at.radio(key="lab_capture").set_value(capture)
    at.text_input(key="lab_description").input(description)
    at.text_area(key="lab_metadata").input(metadata)
    button(at, "Create test intent").click()
    return at.run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize(
    ("amount", "metadata", "message"),
    [
        ("", "", "Enter an amount in EUR."),
        ("abc", "", "is not a number"),
        ("-5", "", "greater than zero"),
        ("0", "", "greater than zero"),
        ("120.5555", "", "at most 2 decimals"),
        ("49.99", "", "Alma accepts €50.00 to €5,000.00"),
        ("5000.01", "", "Alma accepts €50.00 to €5,000.00"),
        ("120", "no equals sign", "Line 1: write key=value."),
        ("120", "a=1\na=2", "appears twice"),
        ("120", "[bad]=1", "without square brackets"),
    ],
)
def test_each_form_error_is_shown_and_creates_nothing(
    gateway: StripeGateway, amount: str, metadata: str, message: str
) -> None:
    at = submit_form(open_app(PAGE), amount, metadata=metadata)

    assert not at.exception
    assert any(message in text for text in errors(at)), errors(at)
    assert not at.success
    assert sandbox_intents(gateway) == []


def test_create_makes_one_confirmed_alma_intent_with_the_return_page(gateway: StripeGateway) -> None:
    at = submit_form(
        open_app(PAGE), "120,50", capture="manual", description="QA basket", metadata="order_id=A-17\nteam=qa"
    )

    [intent] = sandbox_intents(gateway)
    assert (intent.amount, intent.capture_method, intent.status) == (12050, "manual", "requires_action")
    assert intent.description == "QA basket"
    assert ("order_id", "A-17") in intent.metadata and ("team", "qa") in intent.metadata
    assert intent.raw["next_action"]["redirect_to_url"]["return_url"] == PUBLIC_URL + "/return"
    assert f"Created `{intent.id}`" in at.success[0].value
    [link] = at.get("link_button")
    assert link.proto.label == "Open approve/decline page"
    assert link.proto.url == intent.redirect_url
    # The gateway's immediate answer is listed at once, the store's copy right after the sync.
    assert any(intent.id in m.value and "requires_action" in m.value for m in at.markdown)


def test_an_earlier_waiting_test_intent_keeps_its_approve_link(gateway: StripeGateway) -> None:
    """A tester who left the page that created an intent still reaches the customer's page from the list."""
    earlier = create_intent(gateway, 7_500, metadata=(("alma_ops_source", "test_lab"),))
    at = open_app(PAGE)

    [link] = at.get("link_button")
    assert (link.proto.label, link.proto.url) == ("Open approve/decline page", earlier.redirect_url)
    press_hosted_button(earlier.redirect_url or "", "Authorize test payment")
    next(b for b in at.sidebar.button if b.label == "Sync now").click()
    assert not at.run().get("link_button")  # approved: nothing left to open


def test_double_submit_creates_one_intent_until_create_another(gateway: StripeGateway) -> None:
    at = submit_form(open_app(PAGE), "300")
    button(at, "Create test intent").click()
    at.run()  # the same submission again, as a double click sends it

    assert len(sandbox_intents(gateway)) == 1
    assert any("already sent" in i.value for i in at.info)
    at.run()  # a plain rerun submits nothing
    assert len(sandbox_intents(gateway)) == 1

    button(at, "Create another").click()
    at.run()
    button(at, "Create test intent").click()
    at.run()
    assert len(sandbox_intents(gateway)) == 2


def test_cancel_from_recent_test_intents(gateway: StripeGateway) -> None:
    at = submit_form(open_app(PAGE), "80")
    [intent] = sandbox_intents(gateway)

    button(at, "Cancel").click()
    at.run()

    assert gateway.retrieve_intent(intent.id).status == "canceled"
    assert any("Canceled — status canceled." in s.value for s in at.success)
    assert not [b for b in at.button if b.label == "Cancel"]  # nothing left to cancel


def capture(at: AppTest, intent_id: str, amount: str | None = None) -> AppTest:
    """Fill the capture form (or keep its amount), press Capture, and confirm the amount in words."""
    if amount is not None:
        at.text_input(key=f"capture_amount:{intent_id}").input(amount)
    button(at, "Capture").click()
    at.run()
    button(at, "Confirm capture").click()
    return at.run()


def authorised_manual_intent(gateway: StripeGateway, amount: str) -> tuple[AppTest, AlmaIntent]:
    """Created in the lab with manual capture, approved on the hosted page, synced: ready to capture."""
    at = submit_form(open_app(PAGE), amount, capture="manual")
    [intent] = sandbox_intents(gateway)
    press_hosted_button(intent.redirect_url or "", "Authorize test payment")
    button(at, "Sync now").click()
    return at.run(), intent


def test_partial_capture_after_approval(gateway: StripeGateway) -> None:
    at, intent = authorised_manual_intent(gateway, "200")
    assert (
        "status :blue-badge[Awaiting capture] `requires_capture`" in at.success[0].value
    )  # the store's state, not the first answer
    assert not at.get("link_button")  # nothing left to approve

    amount = at.text_input(key=f"capture_amount:{intent.id}")
    assert amount.value == "200.00"  # the full authorised amount by default
    amount.input("250")
    button(at, "Capture").click()
    at.run()
    assert any("Capturable: €0.01 to €200.00; got €250.00." in e for e in errors(at)), errors(at)
    assert gateway.retrieve_intent(intent.id).status == "requires_capture"

    at.text_input(key=f"capture_amount:{intent.id}").input("150.25")
    button(at, "Capture").click()
    at.run()
    assert [w.value for w in at.warning] == ["Capture €150.25 of €200.00; the remaining €49.75 is released for good."]
    assert gateway.retrieve_intent(intent.id).status == "requires_capture"  # nothing sent before confirming
    button(at, "Confirm capture").click()
    at.run()
    captured = gateway.retrieve_intent(intent.id)
    assert (captured.status, captured.amount_received) == ("succeeded", 15025)
    assert any("Captured €150.25 — status succeeded." in s.value for s in at.success)


def test_capture_of_an_intent_no_longer_capturable_shows_stripes_code(gateway: StripeGateway) -> None:
    at, intent = authorised_manual_intent(gateway, "90")
    gateway.cancel_intent(intent.id, "cancel-behind-the-page")  # someone else acts first

    capture(at, intent.id)

    assert any("payment_intent_unexpected_state" in e for e in errors(at)), errors(at)
    assert not at.exception


def test_advance_clock_expires_the_waiting_intent(gateway: StripeGateway) -> None:
    at = submit_form(open_app(PAGE), "75")
    [intent] = sandbox_intents(gateway)
    before = gateway.retrieve_intent(intent.id)
    assert before.status == "requires_action"

    button(at, "+61 min").click()
    at.run()

    after = gateway.retrieve_intent(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_error is not None and after.last_error.code == "payment_intent_payment_attempt_expired"
    assert any(intent.id in m.value and "requires_payment_method" in m.value for m in at.markdown)


def test_recent_test_intents_lists_only_ours(gateway: StripeGateway) -> None:
    other = create_intent(gateway, 6000, description="checkout, not the lab")
    at = submit_form(open_app(PAGE), "61")

    listed = " ".join(m.value for m in at.markdown)
    assert other.intent.id not in listed
    assert len(sandbox_intents(gateway)) == 2


def test_a_refused_capture_does_not_stick_to_the_next_attempt(
    gateway: StripeGateway, store: IntentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe keeps a refusal against its idempotency key: retrying with that key would replay it forever."""
    monkeypatch.setenv("ALMA_OPS_REFRESH_SECONDS", "3600")  # only the page's own syncs during this test
    at = submit_form(open_app(PAGE), "90", capture="manual")
    [intent] = sandbox_intents(gateway)
    # The page believes the intent is authorised before the customer has approved it (a stale store).
    store.upsert_intents(
        [dataclasses.replace(gateway.retrieve_intent(intent.id), status="requires_capture", amount_capturable=9_000)]
    )
    st.cache_data.clear()
    at.run()
    capture(at, intent.id)
    assert any("payment_intent_unexpected_state" in e for e in errors(at)), errors(at)

    press_hosted_button(intent.redirect_url or "", "Authorize test payment")
    button(at, "Sync now").click()
    at.run()
    assert at.text_input(key=f"capture_amount:{intent.id}").value == "90.00"  # the same intent and amount
    capture(at, intent.id)

    assert gateway.retrieve_intent(intent.id).status == "succeeded"
    assert any("Captured €90.00 — status succeeded." in s.value for s in at.success)
    nonce = at.session_state["submission:lab_actions"]
    at.run()
    assert at.session_state["submission:lab_actions"] == nonce  # a success keeps it: a double click replays


def test_advancing_the_clock_of_a_sandbox_that_stopped_is_a_message(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = start_sandbox()
    monkeypatch.setenv("ALMA_OPS_SANDBOX_URL", own.base_url)
    clear_app_caches()
    try:
        at = open_app(PAGE)
        assert not at.error
    finally:
        stop_sandbox(own)

    button(at, "+61 min").click()
    at.run()

    assert not at.exception
    assert any(e.startswith("Could not advance the clock. The local sandbox is not answering (") for e in errors(at)), (
        errors(at)
    )


def test_refund_a_paid_test_intent_and_watch_it_settle_on_the_sandbox_clock(
    gateway: StripeGateway, store: IntentStore
) -> None:
    at = submit_form(open_app(PAGE), "100")
    [intent] = sandbox_intents(gateway)
    press_hosted_button(intent.redirect_url or "", "Authorize test payment")
    button(at, "Sync now").click()
    at.run()
    at.text_input(key=f"lab_refund_amount:{intent.id}").input("40")
    at.button(key=f"lab_refund_ask:{intent.id}").click().run()
    assert "Refund €40.00 of the €100.00 left on this payment; €60.00 stays refundable." in [
        w.value for w in at.warning
    ]
    at.button(key=f"lab_refund_confirm:{intent.id}").click().run()
    [refund] = store.refunds_of(intent.id)
    assert (refund.amount, refund.status) == (4_000, "pending")
    assert "Pending" in list(at.dataframe[0].value["Status"])

    button(at, "+15 min").click()  # past the sandbox's 5-minute refund delay
    at.run()
    assert [r.status for r in store.refunds_of(intent.id)] == ["succeeded"]
    assert list(at.dataframe[0].value["Status"]) == ["Succeeded"]
