"""Every error the sandbox answers, with Stripe's status, type, code, param and message."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from starlette.requests import Request

from dashboard.sandbox.app import run_handler
from dashboard.sandbox.handlers import Call
from dashboard.sandbox.model import RequestRef
from dashboard.sandbox.service import SandboxConfig, SandboxService
from tests.conftest import TEST_KEY, SandboxServer
from tests.sandbox.support import RETURN_URL, raw_request

ALMA = {"amount": 15_000, "currency": "eur", "payment_method_types": ["alma"]}
SEND_TO_ALMA = {**ALMA, "payment_method_data": {"type": "alma"}, "confirm": True, "return_url": RETURN_URL}


def invalid_request(call: Callable[[], Any]) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


def test_non_euro_currency_with_alma_is_refused_at_create(client: stripe.StripeClient) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**ALMA, "currency": "usd"}))
    assert (error.http_status, error.code, error.param) == (400, "payment_intent_invalid_currency", "currency")
    assert "usd" in error.user_message and "eur" in error.user_message
    assert client.v1.payment_intents.list().data == []  # nothing was created


def test_unknown_currency_is_invalid(client: stripe.StripeClient) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**ALMA, "currency": "xyz"}))
    assert (error.code, error.param) == ("invalid_currency", "currency")


@pytest.mark.parametrize(
    ("amount", "code", "limit"),
    [(4_999, "amount_too_small", "at least €50.00"), (500_001, "amount_too_large", "no more than €5,000.00")],
)
def test_amount_outside_alma_limits_is_refused_when_confirming(
    client: stripe.StripeClient, amount: int, code: str, limit: str
) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**SEND_TO_ALMA, "amount": amount}))
    assert (error.http_status, error.code, error.param) == (400, code, "amount")
    assert f"Amount must be {limit} eur" in str(error.user_message)
    intent = client.v1.payment_intents.create({**ALMA, "amount": amount})  # without confirm: allowed
    error = invalid_request(
        lambda: client.v1.payment_intents.confirm(
            intent.id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
        )
    )
    assert (error.code, error.param) == (code, "amount")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


@pytest.mark.parametrize("amount", [5_000, 500_000])
def test_alma_limits_are_inclusive(client: stripe.StripeClient, amount: int) -> None:
    assert client.v1.payment_intents.create({**SEND_TO_ALMA, "amount": amount}).status == "requires_action"


def test_below_stripes_own_minimum_is_refused_even_without_confirm(client: stripe.StripeClient) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**ALMA, "amount": 49}))
    assert (error.code, error.param) == ("amount_too_small", "amount")


@pytest.mark.parametrize("missing", ["amount", "currency"])
def test_missing_required_parameter(client: stripe.StripeClient, missing: str) -> None:
    params = {key: value for key, value in ALMA.items() if key != missing}
    error = invalid_request(lambda: client.v1.payment_intents.create(params))
    assert (error.http_status, error.code, error.param) == (400, "parameter_missing", missing)
    assert error.user_message == f"Missing required param: {missing}."


def test_automatic_payment_methods_and_explicit_types_exclude_each_other(client: stripe.StripeClient) -> None:
    error = invalid_request(
        lambda: client.v1.payment_intents.create({**ALMA, "automatic_payment_methods": {"enabled": True}})
    )
    assert error.http_status == 400 and "automatic_payment_methods, payment_method_types" in error.user_message
    assert client.v1.payment_intents.list().data == []


def test_alma_confirm_without_return_url(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(ALMA)
    error = invalid_request(
        lambda: client.v1.payment_intents.confirm(intent.id, {"payment_method_data": {"type": "alma"}})
    )
    assert error.code == "payment_intent_redirect_confirmation_without_return_url"
    assert error.param == "return_url"


def test_confirm_without_any_payment_method(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(ALMA)
    error = invalid_request(lambda: client.v1.payment_intents.confirm(intent.id, {"return_url": RETURN_URL}))
    assert error.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("fetch", "noun", "param"),
    [
        (lambda c: c.v1.payment_intents.retrieve("pi_missing"), "payment_intent", "intent"),
        (lambda c: c.v1.payment_intents.confirm("pi_missing"), "payment_intent", "intent"),
        (lambda c: c.v1.payment_methods.retrieve("pi_missing"), "PaymentMethod", "payment_method"),
        (lambda c: c.v1.charges.retrieve("pi_missing"), "charge", "id"),
        (lambda c: c.v1.events.retrieve("pi_missing"), "event", "id"),
    ],
)
def test_unknown_ids_are_resource_missing(
    client: stripe.StripeClient, fetch: Callable[[stripe.StripeClient], Any], noun: str, param: str
) -> None:
    error = invalid_request(lambda: fetch(client))
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", param)
    assert error.user_message == f"No such {noun}: 'pi_missing'"


def test_actions_in_the_wrong_state_carry_the_intent(client: stripe.StripeClient) -> None:
    waiting = client.v1.payment_intents.create(SEND_TO_ALMA)
    error = invalid_request(lambda: client.v1.payment_intents.capture(waiting.id))
    assert (error.http_status, error.code) == (400, "payment_intent_unexpected_state")
    assert "requires_action" in error.user_message and "requires_capture" in error.user_message
    assert error.error.payment_intent.id == waiting.id
    canceled = client.v1.payment_intents.cancel(waiting.id)
    for action in (client.v1.payment_intents.cancel, client.v1.payment_intents.confirm):
        error = invalid_request(lambda action=action: action(canceled.id))
        assert error.code == "payment_intent_unexpected_state" and "canceled" in error.user_message


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"colour": "red"}, "colour"),
        ({"payment_method_data": {"type": "alma", "flavour": "x"}}, "payment_method_data[flavour]"),
        ({"payment_method_options": {"card": {"capture_method": "manual"}}}, "payment_method_options[card]"),
    ],
)
def test_unknown_parameters_are_named(client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**ALMA, **params}))
    assert (error.code, error.param) == ("parameter_unknown", param)
    assert error.user_message == f"Received unknown parameter: {param}"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"expand": ["data.customer"]}, "expand"),
        ({"created": {"gt": "yesterday"}}, "created[gt]"),
        ({"starting_after": "pi_missing"}, "starting_after"),
    ],
)
def test_invalid_list_parameters_are_named(client: stripe.StripeClient, params: dict[str, Any], param: str) -> None:
    assert invalid_request(lambda: client.v1.payment_intents.list(params)).param == param


@pytest.mark.parametrize(
    ("method", "path", "form", "param"),
    [
        ("GET", "/v1/payment_intents?created[0]=5", None, "created"),
        ("GET", "/v1/payment_intents?expand[0][x]=y", None, "expand"),
        ("GET", "/v1/events?types[0][a]=b", None, "types"),
        (
            "POST",
            "/v1/payment_intents",
            {"amount": "15000", "currency": "eur", "payment_method_types[0][x]": "alma"},
            "payment_method_types",
        ),
    ],
)
def test_malformed_shapes_are_refused_not_crashed_on(
    sandbox: SandboxServer, method: str, path: str, form: dict[str, Any] | None, param: str
) -> None:
    answer = raw_request(sandbox.base_url, method, path, form=form)
    assert answer.status == 400, answer.body
    assert answer.json()["error"]["param"] == param
    assert raw_request(sandbox.base_url, "GET", "/v1/payment_intents").json()["data"] == []


def test_non_integer_amount(client: stripe.StripeClient) -> None:
    error = invalid_request(lambda: client.v1.payment_intents.create({**ALMA, "amount": "ten"}))
    assert (error.code, error.param) == ("parameter_invalid_integer", "amount")


def test_unrecognized_url(sandbox: SandboxServer) -> None:
    answer = raw_request(sandbox.base_url, "GET", "/v1/customers")
    assert answer.status == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert "Unrecognized request URL (GET: /v1/customers)" in answer.json()["error"]["message"]


def test_missing_key_is_401(sandbox: SandboxServer) -> None:
    answer = raw_request(sandbox.base_url, "GET", "/v1/payment_intents", key=None)
    assert answer.status == 401
    assert "did not provide an API key" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("pk_test_secretpart4242", "pk_test_**********4242"),
        ("sk_test_", "sk_test_"),
        ("not-a-stripe-key-4242", "*****************4242"),
    ],
)
def test_invalid_key_is_401_with_the_key_masked(sandbox: SandboxServer, key: str, masked: str) -> None:
    answer = raw_request(sandbox.base_url, "GET", "/v1/payment_intents", key=key)
    assert answer.status == 401
    error = answer.json()["error"]
    assert (error["type"], error["message"]) == ("invalid_request_error", f"Invalid API Key provided: {masked}")


@pytest.mark.parametrize("key", ["sk_live_fake_abc4242", "rk_live_fake_abc4242"])
def test_live_keys_are_refused(sandbox: SandboxServer, key: str) -> None:
    live = stripe.StripeClient(key, base_addresses={"api": sandbox.base_url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as caught:
        live.v1.payment_intents.list()
    assert caught.value.http_status == 401
    assert "test keys only" in caught.value.user_message and "fake_abc" not in caught.value.user_message
    assert caught.value.user_message.endswith(f"{key[:8]}********4242")
    assert sandbox.stats() == {"GET /v1/payment_intents": 1}


def test_restricted_test_keys_and_basic_auth_are_accepted(sandbox: SandboxServer) -> None:
    restricted = stripe.StripeClient("rk_test_restricted4242", base_addresses={"api": sandbox.base_url})
    assert restricted.v1.payment_intents.list().data == []
    basic = "Basic " + base64.b64encode(f"{TEST_KEY}:".encode()).decode()
    answer = raw_request(sandbox.base_url, "GET", "/v1/payment_intents", key=None, headers={"Authorization": basic})
    assert answer.status == 200


def test_server_fault_answers_500_api_error(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    sandbox.faults(rate=1, kinds="500")
    with pytest.raises(stripe.APIError) as caught:
        client.v1.payment_intents.list()
    assert caught.value.http_status == 500
    assert caught.value.error.type == "api_error"


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("GET", "/v1/payment_intents", TEST_KEY),
        ("GET", "/v1/payment_intents/pi_missing", TEST_KEY),
        ("GET", "/v1/payment_intents", None),
        ("GET", "/_sandbox/health", None),
        ("GET", "/alma/pay/unknown-token", None),
    ],
)
def test_every_response_has_a_request_id(sandbox: SandboxServer, method: str, path: str, key: str | None) -> None:
    answer = raw_request(sandbox.base_url, method, path, key=key)
    assert answer.headers["request-id"].startswith("req_")


def test_a_handler_bug_answers_stripes_500_not_a_dropped_request(caplog: pytest.LogCaptureFixture) -> None:
    """No request reaches a crashing handler on purpose, so the wrapper is driven in-process."""

    def crashing(call: Call) -> bytes:
        raise RuntimeError("boom")

    service = SandboxService(SandboxConfig())
    request = Request({"type": "http", "path_params": {}})
    status, body, executed = run_handler(service, crashing, request, [], RequestRef("req_test"))
    error = json.loads(body)["error"]
    assert (status, error["type"], executed) == (500, "api_error", False)
    assert "sandbox bug" in error["message"] and "boom" not in error["message"]
    assert "boom" in caplog.text  # the traceback goes to the sandbox's log
