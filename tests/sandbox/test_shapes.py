"""Every object the sandbox returns has exactly the keys stripe-python 16.1.0's model class declares.

The expected key sets are read from the model classes' annotations (ClassVars such as OBJECT_NAME and private
names left out), recursively for the nested classes the sandbox fills (NextAction, LastPaymentError,
Charge.PaymentMethodDetails.Alma, ...). The actual keys come from the raw JSON bodies, not from the SDK's
objects, which would hide a missing key. Where Stripe itself sends only part of a class, the rule is explicit:
- tagged unions (`type` names the one variant key Stripe includes): PaymentMethod, NextAction,
  Charge.PaymentMethodDetails, Refund.DestinationDetails;
- per-payment-method maps, whose keys are a subset of the declared ones: PaymentIntent.PaymentMethodOptions,
  PaymentIntent.AmountDetails;
- list and search wrappers: the SDK declares data/has_more/url/next_page but Stripe also sends `object` (and
  `url` on search results).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, Api, redirect_query

MODELS_BY_OBJECT_NAME: dict[str, type[stripe.StripeObject]] = {
    model.OBJECT_NAME: model
    for model in (
        stripe.PaymentIntent,
        stripe.PaymentMethod,
        stripe.Charge,
        stripe.Event,
        stripe.Refund,
        stripe.BalanceTransaction,
    )
}
WRAPPERS: dict[str, type[stripe.StripeObject]] = {"list": stripe.ListObject, "search_result": stripe.SearchResultObject}
PAYMENT_METHOD_TYPES = frozenset(typing.get_args(typing.get_args(stripe.PaymentMethod.__annotations__["type"])[0]))
TAGGED_UNIONS: dict[type, frozenset[str]] = {
    # class -> its variant keys; Stripe sends only the one that `type` names
    stripe.PaymentMethod: PAYMENT_METHOD_TYPES,
    stripe.PaymentIntent.NextAction: frozenset(stripe.PaymentIntent.NextAction.__annotations__) - {"type"},
    stripe.Charge.PaymentMethodDetails: frozenset(stripe.Charge.PaymentMethodDetails.__annotations__) - {"type"},
    stripe.Refund.DestinationDetails: frozenset(stripe.Refund.DestinationDetails.__annotations__) - {"type"},
}
PARTIAL_MAPS = (stripe.PaymentIntent.PaymentMethodOptions, stripe.PaymentIntent.AmountDetails)


def annotations_of(model: type) -> dict[str, Any]:
    """The model's field annotations, its bases' included; private names and ClassVars (OBJECT_NAME) left out."""
    return {
        name: hint
        for klass in reversed(model.__mro__)
        for name, hint in vars(klass).get("__annotations__", {}).items()
        if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar
    }


def declared_fields(model: type) -> frozenset[str]:
    return frozenset(annotations_of(model))


def expected_fields(model: type, payload: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(required, allowed) key sets for `payload` read as an instance of `model`."""
    declared = declared_fields(model)
    if model in WRAPPERS.values():
        declared |= {"object", "url"}
    if model in PARTIAL_MAPS:
        return frozenset(), declared
    variants = TAGGED_UNIONS.get(model)
    if variants is not None:
        chosen = variants & {payload.get("type")}
        declared = (declared - variants) | chosen
    return declared, declared


def model_in_hint(hint: Any) -> type | None:
    """The StripeObject subclass an annotation points at (through Optional/Union/ListObject[...]/forward refs);
    None for free-form maps such as metadata."""
    if isinstance(hint, typing.ForwardRef):
        return getattr(stripe, hint.__forward_arg__, None)
    origin = typing.get_origin(hint)
    if origin is list:  # List[FeeDetail]: each item is one
        return model_in_hint(typing.get_args(hint)[0])
    if origin is typing.Union:
        return next((found for arg in typing.get_args(hint) if (found := model_in_hint(arg))), None)
    candidate = origin or hint
    if isinstance(candidate, type) and issubclass(candidate, stripe.StripeObject):
        return None if candidate.__name__ == "UntypedStripeObject" else candidate
    return None


def nested_model(owner: type, key: str, value: Mapping[str, Any]) -> type | None:
    by_object = value.get("object")
    if not isinstance(by_object, str):  # Event.data holds its snapshot under the key "object"
        by_object = None
    if by_object in MODELS_BY_OBJECT_NAME:
        return MODELS_BY_OBJECT_NAME[by_object]
    if by_object in WRAPPERS:
        return WRAPPERS[by_object]
    return model_in_hint(annotations_of(owner).get(key))


def shape_problems(payload: Mapping[str, Any], model: type, where: str) -> Iterator[str]:
    """Every missing or extra key in `payload` and in the nested objects it carries, each naming its place."""
    required, allowed = expected_fields(model, payload)
    keys = set(payload)
    label = f"{where} ({model.__qualname__})"
    if missing := required - keys:
        yield f"{label}: missing keys {sorted(missing)}"
    if extra := keys - allowed:
        yield f"{label}: extra keys {sorted(extra)}"
    for key in sorted(keys & allowed):
        value = payload[key]
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if not isinstance(item, Mapping):
                continue
            inner = nested_model(model, key, item)
            place = f"{where}.{key}" if index is None else f"{where}.{key}[{index}]"
            if inner is not None:
                yield from shape_problems(item, inner, place)


def assert_shape(payload: Mapping[str, Any], where: str) -> None:
    kind = payload.get("object")
    model = MODELS_BY_OBJECT_NAME.get(kind) or WRAPPERS.get(kind)
    assert model is not None, f"{where}: unexpected object kind {kind!r}"
    problems = list(shape_problems(payload, model, where))
    assert not problems, "\n".join(problems)


# --- driving the sandbox with stripe-python (the `client` fixture is tests/sandbox/conftest.py's) -------


def raw_get(client: stripe.StripeClient, path: str, **params: Any) -> dict[str, Any]:
    return json.loads(client.raw_request("get", path, **params).body)


def raw_body(obj: stripe.StripeObject) -> dict[str, Any]:
    """The JSON exactly as the sandbox sent it for a typed call."""
    assert obj.last_response is not None
    return json.loads(obj.last_response.body)


def decided(api: Api, decision: str, **params: Any) -> stripe.PaymentIntent:
    """An intent sent to Alma whose customer answered `decision` on the hosted page."""
    waiting = api.send_to_alma(**params)
    redirect_query(api.customer_decides(waiting, decision))
    return waiting


def intent_in_each_status(client: stripe.StripeClient, sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    """Raw PaymentIntents, one per lifecycle state an Alma payment reaches, named by how it got there."""
    api = Api(client, sandbox)
    created = api.create(metadata={"order": "A-1"})
    unconfirmed = api.create(payment_method_data={"type": "alma"})
    confirmed = client.v1.payment_intents.confirm(
        api.create().id, {"payment_method_data": {"type": "alma"}, "return_url": RETURN_URL}
    )
    succeeded = decided(api, "authorize")
    held = decided(api, "authorize", capture_method="manual")
    captured = client.v1.payment_intents.capture(decided(api, "authorize", capture_method="manual").id)
    declined = decided(api, "fail")
    canceled = client.v1.payment_intents.cancel(api.create().id, {"cancellation_reason": "abandoned"})
    expired = api.send_to_alma()
    states = {
        "created (answer)": raw_body(created),
        "requires_action (confirm answer)": raw_body(confirmed),
        "requires_action (create+confirm answer)": raw_body(expired),
        "captured (answer)": raw_body(captured),
        "canceled (answer)": raw_body(canceled),
    }
    stored = {
        "requires_payment_method": created.id,
        "requires_confirmation": unconfirmed.id,
        "requires_action": confirmed.id,
        "succeeded": succeeded.id,
        "requires_capture": held.id,
        "succeeded after capture": captured.id,
        "declined": declined.id,
        "canceled": canceled.id,
    }
    states.update(retrieved_plain_and_expanded(client, stored))
    sandbox.advance(3601)  # past the authorisation window: also expires "requires_action", read above
    states.update(retrieved_plain_and_expanded(client, {"expired": expired.id}))
    return states


def retrieved_plain_and_expanded(client: stripe.StripeClient, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for name, intent_id in ids.items():
        states[name] = raw_get(client, f"/v1/payment_intents/{intent_id}")
        states[f"{name} (expanded)"] = raw_get(
            client, f"/v1/payment_intents/{intent_id}", expand=["latest_charge", "payment_method"]
        )
    return states


# --- the tests --------------------------------------------------------------------------------------------


def test_checker_names_missing_extra_and_nested_keys() -> None:
    """The comparison itself can fail: a PaymentIntent short of a key, with a stray one and a bad Alma detail."""
    intent = dict.fromkeys(declared_fields(stripe.PaymentIntent))
    intent.update(object="payment_intent", next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "u"}})
    del intent["amount_received"]
    intent["client_secret_hint"] = "x"
    problems = list(shape_problems(intent, stripe.PaymentIntent, "pi"))
    assert problems == [
        "pi (PaymentIntent): missing keys ['amount_received']",
        "pi (PaymentIntent): extra keys ['client_secret_hint']",
        "pi.next_action.redirect_to_url (PaymentIntent.NextAction.RedirectToUrl): missing keys ['return_url']",
    ]
    charge = dict.fromkeys(declared_fields(stripe.Charge))
    charge.update(object="charge", payment_method_details={"type": "alma", "alma": {"installments": {}}})
    assert list(shape_problems(charge, stripe.Charge, "ch")) == [
        "ch.payment_method_details.alma (Charge.PaymentMethodDetails.Alma): missing keys ['transaction_id']",
        "ch.payment_method_details.alma.installments (Charge.PaymentMethodDetails.Alma.Installments): "
        "missing keys ['count']",
    ]


def test_payment_intents_in_every_state_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    states = intent_in_each_status(client, sandbox)
    assert {state["status"] for state in states.values()} == {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "succeeded",
        "requires_capture",
        "canceled",
    }
    problems = [
        problem
        for name, payload in states.items()
        for problem in shape_problems(payload, stripe.PaymentIntent, f"PaymentIntent[{name}]")
    ]
    assert not problems, "\n".join(problems)


def test_nested_objects_the_sandbox_fills_are_checked(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    """Guards the test above against passing vacuously: the nested parts it recursed into really exist."""
    states = intent_in_each_status(client, sandbox)
    assert states["requires_action"]["next_action"]["redirect_to_url"]["return_url"] == RETURN_URL
    assert states["declined"]["last_payment_error"]["payment_method"]["object"] == "payment_method"
    assert states["expired"]["last_payment_error"]["code"] == "payment_intent_payment_attempt_expired"
    charge = states["succeeded (expanded)"]["latest_charge"]
    assert charge["payment_method_details"]["alma"]["installments"]["count"] in (2, 3, 4)
    assert states["succeeded (expanded)"]["payment_method"]["alma"] == {}


def test_payment_method_and_charge_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    settled = client.v1.payment_intents.retrieve(decided(Api(client, sandbox), "authorize").id)
    payment_method_id = settled.payment_method if isinstance(settled.payment_method, str) else settled.payment_method.id
    charge_id = settled.latest_charge if isinstance(settled.latest_charge, str) else settled.latest_charge.id
    assert_shape(raw_get(client, f"/v1/payment_methods/{payment_method_id}"), f"PaymentMethod {payment_method_id}")
    assert_shape(raw_get(client, f"/v1/charges/{charge_id}"), f"Charge {charge_id}")


def test_events_and_their_snapshots_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent_in_each_status(client, sandbox)
    listing = raw_get(client, "/v1/events", limit=100)
    assert_shape(listing, "event list")
    kinds = {event["type"] for event in listing["data"]}
    assert {
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
    } <= kinds
    first = listing["data"][0]
    assert_shape(raw_get(client, f"/v1/events/{first['id']}"), f"Event {first['id']}")


def test_list_objects_match_the_model_with_and_without_expansion(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    for amount in (6000, 7000, 8000):
        decided(Api(client, sandbox), "authorize", amount=amount)
    plain = raw_get(client, "/v1/payment_intents", limit=2)
    expanded = raw_get(client, "/v1/payment_intents", limit=3, expand=["data.latest_charge", "data.payment_method"])
    assert plain["has_more"] is True and len(plain["data"]) == 2
    assert all(isinstance(pi["latest_charge"], dict) for pi in expanded["data"])
    assert_shape(plain, "payment_intent list")
    assert_shape(expanded, "payment_intent list (expanded)")
    nested = raw_get(client, "/v1/payment_intents", limit=3, expand=["data.latest_charge.balance_transaction"])
    assert all(pi["latest_charge"]["balance_transaction"]["object"] == "balance_transaction" for pi in nested["data"])
    assert_shape(nested, "payment_intent list (nested expansion)")


def test_search_results_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    for amount in (6000, 7000):
        Api(client, sandbox).create(amount)
    found = raw_get(client, "/v1/payment_intents/search", query="amount>6500 AND currency:'eur'", limit=10)
    assert [pi["amount"] for pi in found["data"]] == [7000]
    assert_shape(found, "payment_intent search_result")


def refunds_in_each_state(client: stripe.StripeClient, sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    """Raw Refunds pending, succeeded and failed, plain and with everything expandable expanded."""
    api = Api(client, sandbox)
    intents = [decided(api, "authorize", payment_method_data={"type": "alma", "billing_details": {"name": "A B"}})]
    intents.append(decided(api, "authorize"))
    succeeded = client.v1.refunds.create({"payment_intent": intents[0].id, "amount": 1_000})
    failed = client.v1.refunds.create({"payment_intent": intents[1].id, "metadata": {"sandbox_refund": "fail"}})
    sandbox.advance(300)
    pending = client.v1.refunds.create({"payment_intent": intents[0].id, "amount": 500, "reason": "duplicate"})
    expand = ["balance_transaction", "charge", "payment_intent", "failure_balance_transaction"]
    states = {"pending (answer)": raw_body(pending)}
    for name, refund in (("pending", pending), ("succeeded", succeeded), ("failed", failed)):
        states[name] = raw_get(client, f"/v1/refunds/{refund.id}")
        states[f"{name} (expanded)"] = raw_get(client, f"/v1/refunds/{refund.id}", expand=expand)
    return states


def test_refunds_in_every_state_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    states = refunds_in_each_state(client, sandbox)
    assert {state["status"] for state in states.values()} == {"pending", "succeeded", "failed"}
    assert states["failed (expanded)"]["failure_balance_transaction"]["object"] == "balance_transaction"
    assert states["succeeded (expanded)"]["charge"]["billing_details"]["name"] == "A B"
    for name, payload in states.items():
        assert_shape(payload, f"Refund[{name}]")
    listing = raw_get(client, "/v1/refunds", limit=10, expand=["data.balance_transaction"])
    assert len(listing["data"]) == 3
    assert_shape(listing, "refund list (expanded)")


def test_balance_transactions_match_the_model(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    refunds_in_each_state(client, sandbox)
    listing = raw_get(client, "/v1/balance_transactions", limit=100)
    assert {item["type"] for item in listing["data"]} == {"charge", "refund", "refund_failure"}
    assert any(item["fee_details"] for item in listing["data"])  # the nested FeeDetail is checked too
    assert_shape(listing, "balance_transaction list")
    expanded = raw_get(client, "/v1/balance_transactions", limit=100, expand=["data.source"])
    assert {item["source"]["object"] for item in expanded["data"]} == {"charge", "refund"}
    assert_shape(expanded, "balance_transaction list (expanded)")
    first = listing["data"][0]["id"]
    assert_shape(raw_get(client, f"/v1/balance_transactions/{first}"), f"BalanceTransaction {first}")


def test_refund_events_carry_refunds_and_charges_that_match_the_model(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    refunds_in_each_state(client, sandbox)
    listing = raw_get(client, "/v1/events", limit=100)
    kinds = {event["type"]: event["data"]["object"]["object"] for event in listing["data"]}
    assert {
        "refund.created": "refund",
        "refund.updated": "refund",
        "refund.failed": "refund",
        "charge.refund.updated": "refund",
        "charge.refunded": "charge",
    }.items() <= kinds.items()
    assert_shape(listing, "event list with refunds")
