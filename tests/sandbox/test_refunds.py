"""Refunds, balance transactions and customers, driven with stripe-python as the dashboard drives Stripe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from dashboard.sandbox.model import AlmaRules
from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, Api, redirect_query

DAY = 24 * 3600
RULES = AlmaRules()  # the sandbox's defaults: refunds settle after 300 s; fee 3.50% + 25 cents
CUSTOMER = {"name": "Léa Martin", "email": "lea.martin@example.com"}


def paid(
    client: stripe.StripeClient, sandbox: SandboxServer, amount: int = 10_000, **params: Any
) -> stripe.PaymentIntent:
    """A paid Alma intent (its latest charge expanded); `capture_method="manual"` leaves it held."""
    api = Api(client, sandbox)
    waiting = api.send_to_alma(amount, payment_method_data={"type": "alma", "billing_details": CUSTOMER}, **params)
    redirect_query(api.customer_decides(waiting, "authorize"))
    return client.v1.payment_intents.retrieve(waiting.id, {"expand": ["latest_charge"]})


def charge_of(intent: stripe.PaymentIntent) -> stripe.Charge:
    assert isinstance(intent.latest_charge, stripe.Charge)
    return intent.latest_charge


def refused(call: Callable[[], Any]) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


def event_types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in reversed(client.v1.events.list({"limit": 100}).data)]


# ---- refunds ------------------------------------------------------------------------------------------------
def test_a_refund_is_pending_then_succeeds_after_the_delay_on_the_sandbox_clock(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox)
    before = event_types(client)
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 1_000, "reason": "requested_by_customer"})
    assert (refund.object, refund.status, refund.amount, refund.currency) == ("refund", "pending", 1_000, "eur")
    assert (refund.charge, refund.payment_intent, refund.reason) == (
        charge_of(intent).id,
        intent.id,
        "requested_by_customer",
    )
    assert refund.pending_reason == "processing" and refund.destination_details.type == "alma"
    assert event_types(client)[len(before) :] == ["refund.created", "charge.refunded"]
    # Wall time runs on under the offset: aim 3 s short of the settling instant, wherever the clock now is.
    sandbox.advance(max(0, refund.created + RULES.refund_delay - 3 - sandbox.now()))
    assert client.v1.refunds.retrieve(refund.id).status == "pending"
    sandbox.advance(4)
    settled = client.v1.refunds.retrieve(refund.id)
    assert settled.status == "succeeded" and settled.pending_reason is None
    assert event_types(client)[len(before) + 2 :] == ["refund.updated", "charge.refund.updated"]
    events = client.v1.events.list({"type": "charge.refund.updated"}).data
    assert events[0].data.object.object == "refund" and events[0].created == refund.created + RULES.refund_delay


def test_partial_refunds_add_up_on_the_charge_and_refunded_is_true_only_when_full(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox, 10_000)
    charge_id = charge_of(intent).id
    client.v1.refunds.create({"payment_intent": intent.id, "amount": 1_000})
    client.v1.refunds.create({"charge": charge_id, "amount": 2_500})
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (3_500, False)
    rest = client.v1.refunds.create({"payment_intent": intent.id})  # no amount: whatever is left
    assert rest.amount == 6_500
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (10_000, True)


def test_a_refund_flagged_to_fail_fails_when_it_settles_and_gives_the_amount_back(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox)
    charge_id = charge_of(intent).id
    refund = client.v1.refunds.create({"charge": charge_id, "metadata": {"sandbox_refund": "fail"}})
    assert client.v1.charges.retrieve(charge_id).refunded is True
    sandbox.advance(RULES.refund_delay)
    failed = client.v1.refunds.retrieve(refund.id, {"expand": ["failure_balance_transaction"]})
    assert (failed.status, failed.failure_reason) == ("failed", "declined")
    assert failed.failure_balance_transaction.type == "refund_failure"
    assert failed.failure_balance_transaction.amount == 10_000
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 0
    assert {"refund.failed", "refund.updated", "charge.refund.updated"} <= set(event_types(client))
    assert client.v1.refunds.create({"charge": charge_id}).amount == 10_000  # it can be refunded again


def test_refund_errors_are_stripes(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = paid(client, sandbox, 10_000)
    client.v1.refunds.create({"payment_intent": intent.id, "amount": 9_000})
    error = refused(lambda: client.v1.refunds.create({"payment_intent": intent.id, "amount": 1_001}))
    assert (error.http_status, error.code, error.param) == (400, "amount_too_large", "amount")
    assert error.user_message == "Refund amount (€10.01) is greater than unrefunded amount on charge (€10.00)"
    client.v1.refunds.create({"payment_intent": intent.id})
    error = refused(lambda: client.v1.refunds.create({"payment_intent": intent.id}))
    assert error.code == "charge_already_refunded" and charge_of(intent).id in (error.user_message or "")
    unpaid = Api(client, sandbox).create()
    error = refused(lambda: client.v1.refunds.create({"payment_intent": unpaid.id}))
    assert (error.code, error.param, error.error.type) == (None, "payment_intent", "invalid_request_error")
    assert "does not have a successful charge to refund" in (error.user_message or "")
    assert refused(lambda: client.v1.refunds.create({})).http_status == 400
    both = {"payment_intent": intent.id, "charge": charge_of(intent).id}
    assert "only specify one" in (refused(lambda: client.v1.refunds.create(both)).user_message or "")
    assert refused(lambda: client.v1.refunds.create({"payment_intent": "pi_missing"})).code == "resource_missing"
    assert refused(lambda: client.v1.refunds.retrieve("re_missing")).http_status == 404
    bad_reason = {"payment_intent": intent.id, "reason": "changed_mind"}
    assert refused(lambda: client.v1.refunds.create(bad_reason)).param == "reason"
    assert len(client.v1.refunds.list({"payment_intent": intent.id}).data) == 2  # nothing else was made


@pytest.mark.parametrize("amount", [0, -5, "1e3", "٥"])
def test_refund_amounts_are_positive_ascii_integers(
    client: stripe.StripeClient, sandbox: SandboxServer, amount: object
) -> None:
    intent = paid(client, sandbox)
    assert refused(lambda: client.v1.refunds.create({"payment_intent": intent.id, "amount": amount})).param == "amount"
    assert client.v1.charges.retrieve(charge_of(intent).id).amount_refunded == 0


def test_a_held_authorisation_is_not_refunded_but_released(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    held = paid(client, sandbox, capture_method="manual")
    assert refused(lambda: client.v1.refunds.create({"payment_intent": held.id})).param == "payment_intent"
    assert refused(lambda: client.v1.refunds.create({"charge": charge_of(held).id})).param == "charge"


def test_refunds_are_accepted_up_to_180_days_after_the_payment(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox)
    sandbox.advance(charge_of(intent).created + 180 * DAY - 10 - sandbox.now())
    assert client.v1.refunds.create({"payment_intent": intent.id, "amount": 100}).status == "pending"
    sandbox.advance(20)
    error = refused(lambda: client.v1.refunds.create({"payment_intent": intent.id, "amount": 100}))
    assert (error.code, error.param) == ("charge_not_refundable", "charge")


def test_a_retried_refund_with_its_idempotency_key_is_made_once(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox)
    params = {"payment_intent": intent.id, "amount": 1_500}
    first = client.v1.refunds.create(params, {"idempotency_key": "refund-A-1"})
    again = client.v1.refunds.create(params, {"idempotency_key": "refund-A-1"})
    assert first.id == again.id and client.v1.charges.retrieve(charge_of(intent).id).amount_refunded == 1_500


def test_refund_lists_filter_by_intent_charge_and_created_and_page_with_cursors(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    first, second = paid(client, sandbox), paid(client, sandbox)
    made = []
    for amount in (100, 200, 300):
        made.append(client.v1.refunds.create({"payment_intent": first.id, "amount": amount}))
        sandbox.advance(10)
    other = client.v1.refunds.create({"charge": charge_of(second).id, "amount": 400})
    newest_first = [refund.id for refund in reversed(made)]
    assert [r.id for r in client.v1.refunds.list({"payment_intent": first.id}).data] == newest_first
    assert [r.id for r in client.v1.refunds.list({"charge": charge_of(second).id}).data] == [other.id]
    page = client.v1.refunds.list({"payment_intent": first.id, "limit": 2})
    assert page.has_more and [r.id for r in page.data] == newest_first[:2]
    rest = client.v1.refunds.list({"payment_intent": first.id, "starting_after": page.data[-1].id})
    assert [r.id for r in rest.data] == newest_first[2:] and not rest.has_more
    assert [r.id for r in client.v1.refunds.list({"created": {"gte": made[1].created}}).data] == [
        other.id,
        made[2].id,
        made[1].id,
    ]
    assert len(list(client.v1.refunds.list({"limit": 1}).auto_paging_iter())) == 4


# ---- balance transactions -----------------------------------------------------------------------------------
def test_every_captured_charge_has_a_balance_transaction_with_the_alma_fee(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    charge = charge_of(paid(client, sandbox, 12_000))
    assert isinstance(charge.balance_transaction, str)
    transaction = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    fee = 12_000 * 350 // 10_000 + 25  # 3.50% + €0.25
    assert (transaction.amount, transaction.fee, transaction.net) == (12_000, fee, 12_000 - fee)
    assert (transaction.type, transaction.source, transaction.currency) == ("charge", charge.id, "eur")
    assert [(d.type, d.amount) for d in transaction.fee_details] == [("stripe_fee", fee)]
    assert transaction.status == "pending" and transaction.available_on % DAY == 0
    assert transaction.available_on > transaction.created
    sandbox.advance(8 * DAY)
    assert client.v1.balance_transactions.retrieve(transaction.id).status == "available"


def test_a_held_charge_gets_its_transaction_when_captured_for_the_captured_amount(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    held = paid(client, sandbox, 20_000, capture_method="manual")
    assert charge_of(held).balance_transaction is None
    client.v1.payment_intents.capture(held.id, {"amount_to_capture": 15_000})
    charge = client.v1.charges.retrieve(charge_of(held).id, {"expand": ["balance_transaction"]})
    assert isinstance(charge.balance_transaction, stripe.BalanceTransaction)
    assert (charge.balance_transaction.amount, charge.balance_transaction.fee) == (15_000, 15_000 * 350 // 10_000 + 25)


def test_refunds_have_negative_fee_free_transactions_and_lists_filter_by_type_source_and_created(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox, 10_000)
    sandbox.advance(60)
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 2_000})
    transaction = client.v1.balance_transactions.retrieve(refund.balance_transaction, {"expand": ["source"]})
    assert (transaction.amount, transaction.fee, transaction.net, transaction.type) == (-2_000, 0, -2_000, "refund")
    assert transaction.source.id == refund.id and transaction.fee_details == []
    kinds = [t.type for t in client.v1.balance_transactions.list().data]
    assert kinds == ["refund", "charge"]
    assert [t.id for t in client.v1.balance_transactions.list({"type": "refund"}).data] == [transaction.id]
    by_source = client.v1.balance_transactions.list({"source": charge_of(intent).id}).data
    assert [t.type for t in by_source] == ["charge"]
    assert [t.id for t in client.v1.balance_transactions.list({"created": {"gt": intent.created + 30}}).data] == [
        transaction.id
    ]
    assert refused(lambda: client.v1.balance_transactions.retrieve("txn_missing")).http_status == 404


# ---- customers ----------------------------------------------------------------------------------------------
def test_billing_details_stay_on_the_payment_method_and_repeat_on_the_charge(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    intent = paid(client, sandbox)
    charge = charge_of(intent)
    assert (charge.billing_details.name, charge.billing_details.email) == (CUSTOMER["name"], CUSTOMER["email"])
    payment_method = client.v1.payment_methods.retrieve(charge.payment_method)
    assert payment_method.billing_details.name == CUSTOMER["name"]
    assert payment_method.billing_details.email == CUSTOMER["email"]
    anonymous = Api(client, sandbox).send_to_alma()
    redirect_query(Api(client, sandbox).customer_decides(anonymous, "authorize"))
    retrieved = client.v1.payment_intents.retrieve(anonymous.id, {"expand": ["latest_charge"]})
    assert charge_of(retrieved).billing_details.email is None


def test_billing_details_given_at_confirm_are_kept(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    api = Api(client, sandbox)
    intent = client.v1.payment_intents.confirm(
        api.create().id,
        {
            "payment_method_data": {"type": "alma", "billing_details": {"email": "hugo@example.com"}},
            "return_url": RETURN_URL,
        },
    )
    assert isinstance(intent.payment_method, str)
    assert client.v1.payment_methods.retrieve(intent.payment_method).billing_details.email == "hugo@example.com"


def test_expansions_nest_as_stripes_do(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    """A first sync can have each intent's fee in the list itself: data.latest_charge.balance_transaction."""
    intent = paid(client, sandbox, 10_000)
    listed = client.v1.payment_intents.list({"expand": ["data.latest_charge.balance_transaction"]}).data[0]
    assert isinstance(listed.latest_charge, stripe.Charge)
    assert isinstance(listed.latest_charge.balance_transaction, stripe.BalanceTransaction)
    assert listed.latest_charge.balance_transaction.fee == RULES.fee(10_000)
    refund = client.v1.refunds.create({"payment_intent": intent.id, "amount": 500})
    deep = client.v1.refunds.retrieve(
        refund.id, {"expand": ["payment_intent.latest_charge.balance_transaction", "charge.payment_method"]}
    )
    assert deep.payment_intent.latest_charge.balance_transaction.amount == 10_000
    assert deep.charge.payment_method.billing_details.name == CUSTOMER["name"]
    for path in (
        "payment_intent.latest_charge.payment_intent.latest_charge.balance_transaction",  # 5 levels: Stripe's max is 4
        "charge.refunds",
        "balance_transaction.source.charge",
    ):
        assert refused(lambda path=path: client.v1.refunds.retrieve(refund.id, {"expand": [path]})).param == "expand"
