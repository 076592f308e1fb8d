"""Demo seed: a realistic mix over the last 30 days whose events history agrees with every intent."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import stripe

from dashboard.sandbox.demo import seed_demo
from dashboard.sandbox.model import AlmaRules, Sandbox
from tests.conftest import SandboxServer

DAY = 24 * 3600


@pytest.fixture
def seeded(
    sandbox: SandboxServer, client: stripe.StripeClient
) -> tuple[list[stripe.PaymentIntent], list[stripe.Event]]:
    sandbox.reset(seed_demo=400)
    intents = list(client.v1.payment_intents.list({"limit": 100, "expand": ["data.latest_charge"]}).auto_paging_iter())
    events = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
    return intents, events


def test_mix_of_outcomes(seeded: tuple[list[stripe.PaymentIntent], list[stripe.Event]]) -> None:
    intents, _ = seeded
    assert len(intents) == 400
    statuses = Counter(intent.status for intent in intents)
    assert statuses["succeeded"] > 200
    assert {"requires_payment_method", "canceled", "requires_action", "requires_capture"} <= set(statuses)
    codes = Counter(intent.last_payment_error.code for intent in intents if intent.last_payment_error)
    assert codes["payment_intent_payment_attempt_expired"] > 0 and codes["payment_intent_payment_attempt_failed"] > 0
    reasons = Counter(intent.cancellation_reason for intent in intents if intent.status == "canceled")
    assert reasons["automatic"] > 0 and len(reasons) > 1


def test_intents_look_like_a_shops(
    sandbox: SandboxServer, seeded: tuple[list[stripe.PaymentIntent], list[stripe.Event]]
) -> None:
    intents, _ = seeded
    now = sandbox.now()
    for intent in intents:
        assert now - 31 * DAY <= intent.created <= now
        assert 5_000 <= intent.amount <= 500_000 and intent.currency == "eur"
        assert intent.payment_method_types == ["alma"]
        assert intent.description.startswith("Order #") and intent.metadata["order_id"].startswith("ORD-")
        if intent.latest_charge:
            assert intent.latest_charge.payment_method_details.alma.installments.count in (2, 3, 4)
    assert len({intent.amount for intent in intents}) > 100


def test_events_history_agrees_with_each_intent(
    sandbox: SandboxServer, seeded: tuple[list[stripe.PaymentIntent], list[stripe.Event]]
) -> None:
    intents, events = seeded
    history: dict[str, list[stripe.Event]] = defaultdict(list)
    for event in reversed(events):  # oldest first
        if event.data.object.object == "payment_intent":
            history[event.data.object.id].append(event)
    assert [event.created for event in reversed(events)] == sorted(event.created for event in events)
    now = sandbox.now()
    for intent in intents:
        mine = history[intent.id]
        assert mine[0].type == "payment_intent.created" and mine[0].created == intent.created
        assert mine[-1].data.object.status == intent.status
        assert all(event.created <= now for event in mine)
        if intent.status == "requires_action":  # still on Alma's page, with minutes left
            assert 0 < mine[-1].created + 3600 - now < 3600
        if intent.status == "requires_capture":
            assert now - intent.latest_charge.created < 7 * DAY
        if intent.last_payment_error and intent.last_payment_error.code.endswith("expired"):
            sent = max(event.created for event in mine if event.type == "payment_intent.requires_action")
            assert mine[-1].type == "payment_intent.payment_failed" and mine[-1].created == sent + 3600


def test_every_step_happens_at_a_plausible_past_instant() -> None:
    """In-process, at a size where piling steps up at the seed instant (as clamping to `now` did) shows."""
    now = 1_790_000_000
    sandbox = Sandbox(AlmaRules())
    seed_demo(sandbox, 5_000, now, seed=3)
    events = list(sandbox.events.values())
    per_second = Counter(event.created for event in events)
    assert max(per_second) <= now
    assert sum(count for second, count in per_second.items() if second > now - 60) <= 4
    assert max(per_second.values()) <= 8  # a few intents may share a second by chance, never hundreds
    authorized_at = {e.object.payment_intent: e.created for e in events if e.type == "charge.succeeded"}
    captures = [e for e in events if e.type == "charge.captured"]
    assert captures and all(0 < e.created - authorized_at[e.object.payment_intent] <= 7 * DAY for e in captures)
    for intent in sandbox.intents.values():
        if intent.status == "requires_capture":
            assert now - authorized_at[intent.id] < 7 * DAY
        if intent.cancellation_reason == "automatic":
            assert intent.canceled_at == authorized_at[intent.id] + 7 * DAY
        if intent.status == "requires_action":
            assert intent.redirect is not None and 60 < intent.redirect.deadline - now < 3600


def test_a_short_auth_window_still_seeds_customers_with_time_left() -> None:
    now = 1_790_000_000
    sandbox = Sandbox(AlmaRules(auth_window=60))  # `--auth-window 60`, as QA uses to watch expiries
    seed_demo(sandbox, 500, now, seed=5)
    waiting = [intent for intent in sandbox.intents.values() if intent.status == "requires_action"]
    assert waiting and all(intent.redirect and 0 < intent.redirect.deadline - now < 60 for intent in waiting)
    assert max(event.created for event in sandbox.events.values()) <= now


def test_customers_refunds_and_fees_agree_with_the_events() -> None:
    """In-process on 2,000 intents: every paid charge names its customer and has its fee; refunds, partial and
    full, are spread over the history, each with its balance transaction and its events."""
    now = 1_790_000_000
    sandbox = Sandbox(AlmaRules())
    seed_demo(sandbox, 2_000, now, seed=11)
    rules = sandbox.rules
    captured = [charge for charge in sandbox.charges.values() if charge.captured]
    for charge in captured:
        assert charge.billing.name and charge.billing.email and "@" in charge.billing.email
        assert charge.billing == sandbox.payment_methods[charge.payment_method].billing
        transaction = sandbox.balance_transactions[charge.balance_transaction or ""]
        assert (transaction.amount, transaction.fee) == (charge.amount_captured, rules.fee(charge.amount_captured))
    refunds = list(sandbox.refunds.values())
    charges_refunded = {refund.charge for refund in refunds if refund.status != "failed"}
    full = [c for c in charges_refunded if sandbox.charges[c].amount_refunded == sandbox.charges[c].amount_captured]
    assert len(full) > 10 and len(charges_refunded) - len(full) > 10  # partial and full refunds both
    assert {refund.status for refund in refunds} == {"succeeded", "failed"}
    events_of: dict[str, list[str]] = defaultdict(list)
    for event_id in reversed(list(sandbox.event_index.newest_first())):
        event = sandbox.events[event_id]
        if event.type.startswith(("refund.", "charge.refund.")):
            events_of[event.object.id].append(event.type)
    for refund in refunds:
        assert (
            refund.created <= now and sandbox.balance_transactions[refund.balance_transaction].amount == -refund.amount
        )
        settled = ["refund.updated", "charge.refund.updated"]
        expected = ["refund.created", *(["refund.failed"] if refund.status == "failed" else []), *settled]
        assert events_of[refund.id] == expected
    for charge in captured:  # what the charge says was refunded is what its live refunds add up to
        live = sum(r.amount for r in refunds if r.charge == charge.id and r.status != "failed")
        assert charge.amount_refunded - (charge.amount - charge.amount_captured) == live
