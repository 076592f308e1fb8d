"""Idempotency-Key: the same request replays its first answer; a different one under the same key is refused."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, raw_request

ALMA = {"amount": 15_000, "currency": "eur", "payment_method_types": ["alma"]}


def test_same_key_same_params_replays_without_a_new_object(client: stripe.StripeClient) -> None:
    first = client.v1.payment_intents.create(ALMA, {"idempotency_key": "order-42"})
    again = client.v1.payment_intents.create(ALMA, {"idempotency_key": "order-42"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert [intent.id for intent in client.v1.payment_intents.list().data] == [first.id]
    assert len(client.v1.events.list().data) == 1


def test_same_key_different_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.payment_intents.create(ALMA, {"idempotency_key": "order-43"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.payment_intents.create({**ALMA, "amount": 16_000}, {"idempotency_key": "order-43"})
    assert caught.value.http_status == 400
    assert caught.value.error.type == "idempotency_error"
    assert "order-43" in caught.value.user_message
    assert len(client.v1.payment_intents.list().data) == 1


def test_replayed_confirm_does_not_open_a_second_attempt(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(ALMA)
    params = {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
    first = client.v1.payment_intents.confirm(intent.id, params, {"idempotency_key": "confirm-1"})
    again = client.v1.payment_intents.confirm(intent.id, params, {"idempotency_key": "confirm-1"})
    assert again.next_action.redirect_to_url.url == first.next_action.redirect_to_url.url
    assert again.payment_method == first.payment_method
    assert len(client.v1.events.list({"type": "payment_intent.requires_action"}).data) == 1


def test_an_error_from_an_executed_endpoint_is_replayed(sandbox: SandboxServer) -> None:
    created = raw_request(
        sandbox.base_url,
        "POST",
        "/v1/payment_intents",
        form={"amount": "15000", "currency": "eur", "payment_method_types[0]": "alma"},
    )
    capture = f"/v1/payment_intents/{created.json()['id']}/capture"  # not authorised: a state error
    first = raw_request(sandbox.base_url, "POST", capture, form={}, headers={"Idempotency-Key": "k"})
    again = raw_request(sandbox.base_url, "POST", capture, form={}, headers={"Idempotency-Key": "k"})
    assert first.status == again.status == 400 and first.body == again.body
    assert first.json()["error"]["code"] == "payment_intent_unexpected_state"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["original-request"] == first.headers["request-id"]


def test_a_request_that_failed_validation_leaves_its_key_free_for_the_corrected_retry(
    sandbox: SandboxServer,
) -> None:
    form = {"amount": "15000", "currency": "usd", "payment_method_types[0]": "alma"}
    first = raw_request(sandbox.base_url, "POST", "/v1/payment_intents", form=form, headers={"Idempotency-Key": "k"})
    assert first.status == 400 and first.json()["error"]["param"] == "currency"
    fixed = raw_request(
        sandbox.base_url,
        "POST",
        "/v1/payment_intents",
        form={**form, "currency": "eur"},
        headers={"Idempotency-Key": "k"},
    )
    assert fixed.status == 200 and "idempotent-replayed" not in fixed.headers
