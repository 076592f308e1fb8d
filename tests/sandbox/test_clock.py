"""The sandbox clock: Alma's 1-hour window and the 7-day capture window, applied lazily but stamped at the
instant they fell due."""

from __future__ import annotations

import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, SEND_TO_ALMA, hosted_page, submit_hosted_page

HOUR = 3600
WEEK = 7 * 24 * HOUR


def events_for(client: stripe.StripeClient, intent_id: str, event_type: str) -> list[stripe.Event]:
    return [
        event
        for event in client.v1.events.list({"type": event_type, "limit": 100}).data
        if event.data.object.id == intent_id
    ]


def confirmed_at(client: stripe.StripeClient, intent_id: str) -> int:
    return events_for(client, intent_id, "payment_intent.requires_action")[0].created


def test_advance_moves_the_clock(sandbox: SandboxServer) -> None:
    before = sandbox.now()
    after = sandbox.advance(90)
    assert after - before >= 90  # plus whatever the wall clock ticked between the two calls
    assert sandbox.control("GET", "/_sandbox/clock")["offset"] == 90


def test_attempt_left_on_alma_expires_after_the_window(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    deadline = confirmed_at(client, intent.id) + HOUR
    sandbox.advance(HOUR - 120)
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"
    sandbox.advance(5 * HOUR)  # nobody looks until long after the deadline
    expired = client.v1.payment_intents.retrieve(intent.id)
    assert expired.status == "requires_payment_method"  # not canceled: a new attempt may follow
    assert expired.payment_method is None and expired.next_action is None
    assert expired.last_payment_error.code == "payment_intent_payment_attempt_expired"
    assert expired.last_payment_error.payment_method.id == intent.payment_method
    failed = events_for(client, intent.id, "payment_intent.payment_failed")
    assert len(failed) == 1 and failed[0].created == deadline
    assert failed[0].data.object.status == "requires_payment_method"
    assert failed[0].request.id is None  # the clock did it, not a request
    closed = hosted_page(intent.next_action.redirect_to_url.url)
    assert closed.status == 410 and b"This payment link expired" in closed.body


def test_expired_attempt_cannot_be_authorized_late(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    sandbox.advance(HOUR + 1)
    answer = submit_hosted_page(intent.next_action.redirect_to_url.url, "authorize")
    assert answer.status == 410
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


def test_a_new_attempt_gets_a_new_window(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    sandbox.advance(HOUR - 60)
    again = client.v1.payment_intents.confirm(intent.id, {"return_url": RETURN_URL})
    assert again.next_action.redirect_to_url.url != intent.next_action.redirect_to_url.url
    sandbox.advance(120)  # past the first attempt's deadline, inside the second's
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"
    replaced = hosted_page(intent.next_action.redirect_to_url.url)
    assert replaced.status == 410 and b"replaced" in replaced.body
    assert hosted_page(again.next_action.redirect_to_url.url).status == 200


def authorized_for_manual_capture(client: stripe.StripeClient) -> stripe.PaymentIntent:
    intent = client.v1.payment_intents.create({**SEND_TO_ALMA, "capture_method": "manual"})
    submit_hosted_page(intent.next_action.redirect_to_url.url, "authorize")
    return intent


def test_uncaptured_authorisation_is_canceled_after_seven_days(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = authorized_for_manual_capture(client)
    held = client.v1.payment_intents.retrieve(intent.id, {"expand": ["latest_charge"]})
    sandbox.advance(WEEK - 60)
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"
    sandbox.advance(3 * 24 * HOUR)
    canceled = client.v1.payment_intents.retrieve(intent.id)
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "automatic")
    assert canceled.canceled_at == held.latest_charge.created + WEEK
    event = events_for(client, intent.id, "payment_intent.canceled")[0]
    assert event.created == held.latest_charge.created + WEEK
    # the held amount is released as Stripe does for a lapsed authorisation: charge.expired, not .refunded
    expired = [e for e in client.v1.events.list({"type": "charge.*"}).data if e.type == "charge.expired"]
    assert [e.data.object.id for e in expired] == [held.latest_charge.id]
    assert expired[0].created == event.created and expired[0].request.id is None
    assert (expired[0].data.object.refunded, expired[0].data.object.captured) == (True, False)
    assert client.v1.events.list({"type": "charge.refunded"}).data == []


def test_captured_intent_is_left_alone_by_the_capture_deadline(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = authorized_for_manual_capture(client)
    client.v1.payment_intents.capture(intent.id)
    sandbox.advance(2 * WEEK)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert events_for(client, intent.id, "payment_intent.canceled") == []
