"""Every Alma lifecycle path through stripe-python, unchanged. Written against the SDK only, so it also runs
against Stripe test mode when STRIPE_SECRET_KEY is set (hosted-page steps skip there)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from tests.sandbox.support import RETURN_URL, Api, redirect_query


def test_create_without_confirm_waits_for_a_payment_method(api: Api) -> None:
    intent = api.create(20_000, description="Order #1", metadata={"order_id": "1"})
    assert (intent.status, intent.amount, intent.currency) == ("requires_payment_method", 20_000, "eur")
    assert intent.id.startswith("pi_") and intent.livemode is False
    assert intent.payment_method_types == ["alma"]
    assert intent.metadata.to_dict() == {"order_id": "1"}
    assert intent.next_action is None and intent.latest_charge is None and intent.payment_method is None
    assert api.client.v1.payment_intents.retrieve(intent.id).to_dict() == intent.to_dict()


def test_payment_method_data_without_confirm_waits_for_confirmation(api: Api) -> None:
    intent = api.create(payment_method_data={"type": "alma"})
    assert intent.status == "requires_confirmation"
    assert isinstance(intent.payment_method, str) and intent.payment_method.startswith("pm_")
    confirmed = api.client.v1.payment_intents.confirm(intent.id, {"return_url": RETURN_URL})
    assert confirmed.status == "requires_action"
    assert confirmed.payment_method == intent.payment_method


def test_confirm_with_alma_sends_the_customer_to_an_opaque_redirect(api: Api) -> None:
    intent = api.create()
    confirmed = api.client.v1.payment_intents.confirm(
        intent.id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
    )
    assert confirmed.status == "requires_action"
    assert confirmed.next_action.type == "redirect_to_url"
    redirect = confirmed.next_action.redirect_to_url
    assert redirect.return_url == RETURN_URL
    assert confirmed.client_secret not in redirect.url and "secret" not in redirect.url
    payment_method = api.client.v1.payment_methods.retrieve(confirmed.payment_method)
    assert payment_method.type == "alma" and payment_method.alma.to_dict() == {}


def test_authorize_succeeds_with_a_charge_carrying_the_installments(api: Api) -> None:
    intent = api.send_to_alma(32_000)
    query = redirect_query(api.customer_decides(intent, "authorize", installments=4))
    assert query["payment_intent"] == [intent.id]
    assert query["payment_intent_client_secret"] == [intent.client_secret]
    assert query["redirect_pm_type"] == ["alma"] and query["redirect_status"] == ["succeeded"]
    assert query["tab"] == ["lab"]  # the return_url's own query is kept
    paid = api.client.v1.payment_intents.retrieve(intent.id, {"expand": ["latest_charge"]})
    assert (paid.status, paid.amount_received, paid.amount_capturable) == ("succeeded", 32_000, 0)
    assert paid.next_action is None
    charge = paid.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount, charge.amount_captured, charge.captured, charge.paid) == (32_000, 32_000, True, True)
    assert charge.payment_method_details.type == "alma"
    assert charge.payment_method_details.alma.installments.count == 4
    assert charge.payment_method_details.alma.transaction_id
    assert api.client.v1.charges.retrieve(charge.id).payment_intent == intent.id


def test_manual_capture_holds_then_captures_the_full_amount(api: Api) -> None:
    intent = api.send_to_alma(25_000, payment_method_options={"alma": {"capture_method": "manual"}})
    assert intent.payment_method_options.alma.capture_method == "manual"
    assert redirect_query(api.customer_decides(intent, "authorize"))["redirect_status"] == ["succeeded"]
    held = api.client.v1.payment_intents.retrieve(intent.id)
    assert (held.status, held.amount_capturable, held.amount_received) == ("requires_capture", 25_000, 0)
    captured = api.client.v1.payment_intents.capture(intent.id)
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 25_000, 0)
    charge = api.client.v1.charges.retrieve(captured.latest_charge)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded) == (True, 25_000, 0)


@pytest.mark.parametrize(
    "choice", [{"capture_method": "manual"}, {"payment_method_options": {"alma": {"capture_method": "manual"}}}]
)
def test_manual_capture_can_be_chosen_at_confirm(api: Api, choice: dict[str, Any]) -> None:
    intent = api.create()
    confirmed = api.client.v1.payment_intents.confirm(
        intent.id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL, **choice}
    )
    redirect_query(api.customer_decides(confirmed, "authorize"))
    held = api.client.v1.payment_intents.retrieve(intent.id)
    assert (held.status, held.amount_capturable) == ("requires_capture", intent.amount)


def test_automatic_payment_methods_offer_alma_for_euros(api: Api) -> None:
    intent = api.client.v1.payment_intents.create(
        {"amount": 15_000, "currency": "eur", "automatic_payment_methods": {"enabled": True}}
    )
    assert intent.automatic_payment_methods.enabled is True and "alma" in intent.payment_method_types
    confirmed = api.client.v1.payment_intents.confirm(
        intent.id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
    )
    assert confirmed.status == "requires_action" and confirmed.next_action.type == "redirect_to_url"


def test_partial_capture_releases_the_rest(api: Api) -> None:
    intent = api.send_to_alma(25_000, capture_method="manual")
    redirect_query(api.customer_decides(intent, "authorize"))
    captured = api.client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 10_000})
    assert (captured.status, captured.amount_received) == ("succeeded", 10_000)
    charge = api.client.v1.charges.retrieve(captured.latest_charge)
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (10_000, 15_000, False)


def test_decline_detaches_the_method_and_allows_a_new_attempt(api: Api) -> None:
    intent = api.send_to_alma()
    query = redirect_query(api.customer_decides(intent, "fail"))
    assert query["redirect_status"] == ["failed"]
    failed = api.client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.payment_method is None and failed.next_action is None
    error = failed.last_payment_error
    assert error.code == "payment_intent_payment_attempt_failed"
    assert error.payment_method.id == intent.payment_method and error.payment_method.type == "alma"
    retried = api.client.v1.payment_intents.confirm(
        intent.id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
    )
    assert retried.status == "requires_action" and retried.last_payment_error is None
    assert retried.payment_method != intent.payment_method
    redirect_query(api.customer_decides(retried, "authorize"))
    assert api.client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_cancel_while_on_alma_closes_the_hosted_page(api: Api) -> None:
    intent = api.send_to_alma()
    canceled = api.client.v1.payment_intents.cancel(intent.id, {"cancellation_reason": "requested_by_customer"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert canceled.canceled_at is not None and canceled.next_action is None
    answer = api.customer_decides(intent, "authorize")
    assert answer.status == 410 and b"This payment was canceled" in answer.body


def test_cancel_an_authorisation_releases_the_charge(api: Api) -> None:
    intent = api.send_to_alma(capture_method="manual")
    redirect_query(api.customer_decides(intent, "authorize"))
    canceled = api.client.v1.payment_intents.cancel(intent.id)
    assert (canceled.status, canceled.amount_capturable) == ("canceled", 0)
    charge = api.client.v1.charges.retrieve(canceled.latest_charge)
    assert (charge.captured, charge.amount_refunded, charge.refunded) == (False, 15_000, True)
    # Stripe refunds the held amount and says so with charge.refunded, beside payment_intent.canceled
    refunded = api.client.v1.events.list({"type": "charge.refunded"}).data
    released = next(event.data.object for event in refunded if event.data.object.id == charge.id)
    assert (released.captured, released.amount_refunded, released.refunded) == (False, 15_000, True)
    canceled_events = api.client.v1.events.list({"type": "payment_intent.canceled"}).data
    assert any(event.data.object.id == intent.id for event in canceled_events)


def test_update_sets_description_and_merges_metadata(api: Api) -> None:
    intent = api.create(metadata={"order_id": "7", "channel": "web"})
    updated = api.client.v1.payment_intents.update(
        intent.id, {"description": "Order #7", "metadata": {"channel": "", "note": "gift"}}
    )
    assert updated.description == "Order #7"
    assert updated.metadata.to_dict() == {"order_id": "7", "note": "gift"}


def test_each_transition_emits_its_events_with_the_object_as_it_stood(api: Api) -> None:
    intent = api.send_to_alma(capture_method="manual")
    redirect_query(api.customer_decides(intent, "authorize"))
    api.client.v1.payment_intents.capture(intent.id)
    events = api.client.v1.events.list({"limit": 20}).data
    mine = [event for event in events if _object_intent_id(event.data.object) == intent.id]
    assert [event.type for event in reversed(mine)] == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
    ]
    statuses = {event.type: event.data.object.status for event in mine if event.data.object.object == "payment_intent"}
    assert statuses == {
        "payment_intent.created": "requires_confirmation",  # created with its method, then confirmed
        "payment_intent.requires_action": "requires_action",
        "payment_intent.amount_capturable_updated": "requires_capture",
        "payment_intent.succeeded": "succeeded",
    }
    created = mine[-1]
    assert created.api_version == "2026-10-28.endive" and created.livemode is False
    assert created.request.id and created.request.id.startswith("req_")
    assert created.pending_webhooks == 0
    charge_events = [event for event in mine if event.type == "charge.succeeded"]
    assert charge_events[0].data.object.captured is False  # the authorisation, before the capture


def _object_intent_id(obj: stripe.StripeObject) -> str:
    return obj.id if obj.object == "payment_intent" else obj.payment_intent


def test_return_url_query_is_kept_in_the_redirect(api: Api) -> None:
    intent = api.send_to_alma(return_url="https://shop.example/done?lang=fr&x=1#top")
    location = api.customer_decides(intent, "authorize").headers["location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "shop.example", "/done", "top")
    query = parse_qs(parts.query)
    assert query["lang"] == ["fr"] and query["x"] == ["1"] and query["payment_intent"] == [intent.id]
