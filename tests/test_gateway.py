"""The gateway against the sandbox over real HTTP: typed results, Stripe's error codes, retries, read-only live."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse

import pytest

from dashboard.domain import EXPIRED_CODE, FAILED_CODE, AlmaIntent, charge_balance_transaction, failure_kind, is_alma
from dashboard.gateway import (
    CreateIntentRequest,
    GatewayError,
    GatewayUnavailable,
    NotFoundError,
    RateLimitBackoff,
    RateLimitedError,
    ReadOnlyModeError,
    RefundRequest,
    StripeGateway,
    submission_idempotency_key,
)
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from tests.conftest import ROOT, TEST_KEY, answer_alma_page

WINDOW = AUTH_WINDOW_SECONDS


def new_request(amount: int = 12_000, capture_method: str = "automatic", **fields: object) -> CreateIntentRequest:
    values: dict[str, object] = {
        "amount": amount,
        "capture_method": capture_method,
        "description": "QA order",
        "metadata": (("order", "42"),),
        "return_url": "http://localhost:8501/return?tab=lab",
    }
    return CreateIntentRequest(**{**values, **fields})  # type: ignore[arg-type]  # each test's overrides, as given


def create(gateway: StripeGateway, key: str = "k1", **fields: object) -> AlmaIntent:
    created = gateway.create_alma_intent(new_request(**fields), submission_idempotency_key("create", key))
    assert created.redirect_url == created.intent.redirect_url
    return created.intent


class TestCreate:
    def test_create_and_confirm_sends_the_customer_to_alma(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        intent = create(gateway)
        assert (intent.status, intent.amount, intent.currency) == ("requires_action", 12_000, "eur")
        assert intent.payment_method_types == ("alma",) and is_alma(intent)
        assert intent.payment_method_type == "alma"
        assert intent.metadata == (("order", "42"),) and intent.description == "QA order"
        assert intent.redirect_url and intent.redirect_url.startswith(sandbox.base_url)
        assert "secret" not in intent.redirect_url
        assert "client_secret" not in intent.raw

    def test_same_submission_creates_one_intent(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        first = create(gateway, key="submission-1")
        again = create(gateway, key="submission-1")
        other = create(gateway, key="submission-2")
        assert first.id == again.id != other.id
        listed = [i.id for page in gateway.list_intents(0) for i in page]
        assert sorted(listed) == sorted({first.id, other.id})

    def test_idempotency_key_follows_the_submission(self) -> None:
        key = submission_idempotency_key("create", "s1", amount=100, note="x")
        assert key == submission_idempotency_key("create", "s1", note="x", amount=100)
        assert key != submission_idempotency_key("create", "s1", amount=101, note="x")
        assert key != submission_idempotency_key("create", "s2", amount=100, note="x")
        assert key != submission_idempotency_key("cancel", "s1", amount=100, note="x")

    @pytest.mark.parametrize(("amount", "code"), [(4_999, "amount_too_small"), (500_001, "amount_too_large")])
    def test_amount_outside_alma_limits(self, gateway: StripeGateway, amount: int, code: str) -> None:
        with pytest.raises(GatewayError) as raised:
            create(gateway, amount=amount)
        error = raised.value
        assert (error.code, error.http_status) == (code, 400)
        assert str(error).startswith(f"{code}: ") and error.message
        assert error.request_id

    def test_missing_return_url(self, gateway: StripeGateway) -> None:
        with pytest.raises(GatewayError) as raised:
            create(gateway, return_url="")
        assert raised.value.code == "payment_intent_redirect_confirmation_without_return_url"


class TestLifecycle:
    def test_authorize_on_the_alma_page(self, gateway: StripeGateway) -> None:
        intent = create(gateway)
        location = answer_alma_page(intent.redirect_url, "authorize", installments=4)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert (query["tab"], query["payment_intent"], query["redirect_status"]) == ("lab", intent.id, "succeeded")
        paid = gateway.retrieve_intent(intent.id)
        assert (paid.status, paid.amount_received, paid.installments) == ("succeeded", 12_000, 4)
        assert paid.charge_method_type == "alma" and paid.alma_transaction_id and paid.authorized_at
        listed = [i for page in gateway.list_intents(0) for i in page]
        assert listed == [paid]  # the list expands latest_charge and payment_method as retrieve does

    def test_return_page_secret_check(self, gateway: StripeGateway) -> None:
        intent = create(gateway)
        location = answer_alma_page(intent.redirect_url, "authorize")
        secret = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["payment_intent_client_secret"]
        checked, matches = gateway.retrieve_intent_checking_secret(intent.id, secret)
        assert matches and checked.status == "succeeded"
        assert "client_secret" not in checked.raw
        assert gateway.retrieve_intent_checking_secret(intent.id, secret + "x")[1] is False
        assert gateway.retrieve_intent_checking_secret(intent.id, "")[1] is False

    def test_decline_on_the_alma_page(self, gateway: StripeGateway) -> None:
        intent = create(gateway)
        answer_alma_page(intent.redirect_url, "fail")
        failed = gateway.retrieve_intent(intent.id)
        assert failed.status == "requires_payment_method" and failed.payment_method_id is None
        assert failed.last_error is not None and failed.last_error.code == FAILED_CODE
        assert is_alma(failed) and failure_kind(failed, WINDOW) == "declined"

    def test_expiry_after_the_auth_window(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        intent = create(gateway)
        sandbox.advance(WINDOW + 1)
        expired = gateway.retrieve_intent(intent.id)
        assert expired.status == "requires_payment_method"
        assert expired.last_error is not None and expired.last_error.code == EXPIRED_CODE
        assert failure_kind(expired, WINDOW) == "expired"

    @pytest.mark.parametrize(("amount_to_capture", "received"), [(10_000, 10_000), (None, 12_000)])
    def test_manual_capture_partial_or_full(
        self, gateway: StripeGateway, amount_to_capture: int | None, received: int
    ) -> None:
        intent = create(gateway, capture_method="manual")
        answer_alma_page(intent.redirect_url, "authorize", installments=2)
        authorised = gateway.retrieve_intent(intent.id)
        assert (authorised.status, authorised.amount_capturable) == ("requires_capture", 12_000)
        key = submission_idempotency_key("capture", "c1", amount=amount_to_capture)
        captured = gateway.capture_intent(intent.id, amount_to_capture, key)
        assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", received, 0)
        assert captured.installments == 2

    def test_cancel_then_wrong_state(self, gateway: StripeGateway) -> None:
        intent = create(gateway)
        canceled = gateway.cancel_intent(intent.id, submission_idempotency_key("cancel", "c1"))
        assert canceled.status == "canceled" and canceled.canceled_at
        with pytest.raises(GatewayError) as raised:
            gateway.capture_intent(intent.id, None, submission_idempotency_key("capture", "c2"))
        assert raised.value.code == "payment_intent_unexpected_state"

    def test_unknown_intent(self, gateway: StripeGateway) -> None:
        with pytest.raises(NotFoundError) as raised:
            gateway.retrieve_intent("pi_doesnotexist")
        assert (raised.value.code, raised.value.http_status, raised.value.param) == ("resource_missing", 404, "intent")


class TestReading:
    def test_list_pages_newest_first_within_the_window(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        start = sandbox.now()
        ids = []
        for n in range(205):
            ids.append(create(gateway, key=f"s{n}").id)
            if n == 99:
                sandbox.advance(10)
        before = sandbox.request_count()
        pages = list(gateway.list_intents(start))
        assert [len(page) for page in pages] == [100, 100, 5]
        assert sandbox.request_count() - before == 3
        listed = [intent for page in pages for intent in page]
        assert sorted(i.id for i in listed) == sorted(ids)
        assert [i.created for i in listed] == sorted((i.created for i in listed), reverse=True)
        assert listed[0].payment_method_type == "alma"  # expanded in the list
        assert len([i for page in gateway.list_intents(start + 10) for i in page]) == 105
        assert len([i for page in gateway.list_intents(start, created_lt=start + 10) for i in page]) == 100

    def test_events_oldest_first(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        start = sandbox.now()
        assert gateway.recent_events() == []
        intent = create(gateway)
        sandbox.advance(5)
        answer_alma_page(intent.redirect_url, "authorize", installments=2)
        events = gateway.list_events(start)
        types = [e.type for e in events]
        assert types[:2] == ["payment_intent.created", "payment_intent.requires_action"]
        assert set(types[2:]) == {"payment_intent.succeeded", "charge.succeeded"}
        assert [e.created for e in events] == sorted(e.created for e in events)
        assert all(e.intent_id == intent.id for e in events)
        assert all("client_secret" not in e.object for e in events)
        charge = next(e for e in events if e.type == "charge.succeeded")
        assert charge.object["payment_method_details"]["alma"]["installments"]["count"] == 2
        assert gateway.recent_events(1) == events[-1:]
        only = gateway.list_events(start, types=["payment_intent.requires_action"])
        assert [e.type for e in only] == ["payment_intent.requires_action"]

    def test_events_after_a_cursor_and_recent_pages(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        start = sandbox.now()
        for n in range(120):  # 240 events
            create(gateway, key=f"e{n}")
        everything = gateway.list_events(start)
        assert len(everything) == 240
        before = sandbox.request_count()
        after = gateway.events_after(everything[9].id)
        assert sandbox.request_count() - before == 3  # 230 events, forward with ending_before
        assert after == everything[10:]
        assert gateway.events_after(everything[-1].id) == []
        assert gateway.recent_events(5) == everything[-5:]
        sandbox.advance(100)
        create(gateway, key="later")
        assert gateway.recent_events(3, created_lte=start + 99) == everything[-3:]
        later = sandbox.now()  # the sandbox clock runs with wall time: the creates above took some of it
        assert [e.type for e in gateway.recent_events(created_gte=start + 100)] == [
            "payment_intent.created",
            "payment_intent.requires_action",
        ]
        assert all(start + 100 <= e.created <= later for e in gateway.recent_events(created_gte=start + 100))
        with pytest.raises(NotFoundError):
            gateway.events_after("evt_unknown")


class TestReadOnlyLive:
    def test_live_writes_refused_before_any_request(self, sandbox: LocalSandbox) -> None:
        live = StripeGateway(Settings(secret_key="sk_live_fake_gateway_1234"), api_base=sandbox.base_url)
        before = sandbox.stats()
        key = submission_idempotency_key("x", "y")
        for write in (
            lambda: live.create_alma_intent(new_request(), key),
            lambda: live.cancel_intent("pi_123", key),
            lambda: live.capture_intent("pi_123", None, key),
            lambda: live.create_refund(RefundRequest("pi_123", None, None), key),
        ):
            with pytest.raises(ReadOnlyModeError) as raised:
                write()
            assert raised.value.code == "live_mode_read_only"
        assert sandbox.stats() == before

    def test_local_mode_needs_the_sandbox_address(self) -> None:
        with pytest.raises(ValueError):
            StripeGateway(Settings())

    def test_repr_has_no_key(self, sandbox: LocalSandbox) -> None:
        assert TEST_KEY not in repr(StripeGateway(Settings(secret_key=TEST_KEY), api_base=sandbox.base_url))


class TestFaults:
    def test_retried_submissions_are_never_doubled(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        """A call may fail after every retry; the user submitting again (same key) must then get the one
        intent, never a second. Scripted: the first submission loses all four connections (the first try and
        stripe-python's three retries); its resubmission is answered on the third try."""
        sandbox.faults(script=["drop"] * 4 + ["500", "drop"])
        created: dict[int, str] = {}
        failures = 0
        for n in range(3):
            for _ in range(3):
                try:
                    created[n] = create(gateway, key=f"f{n}").id
                    break
                except GatewayUnavailable:
                    failures += 1
        assert failures == 1 and len(created) == 3
        listed = [i.id for page in gateway.list_intents(0) for i in page]
        assert sorted(listed) == sorted(set(created.values())) and len(listed) == 3
        assert sandbox.request_count() == 4 + 3 + 1 + 1 + 1  # f0 failed, f0 again, f1, f2, the list

    def test_rate_limit_gives_up_after_the_backoff(self, sandbox: LocalSandbox) -> None:
        impatient = StripeGateway(
            Settings(),
            api_base=sandbox.base_url,
            rate_limit_backoff=RateLimitBackoff(retries=2, base_delay=0.01, max_delay=0.05),
        )
        sandbox.faults(1.0, kinds="429")
        before = sandbox.request_count()
        with pytest.raises(RateLimitedError) as raised:
            impatient.recent_events(1)
        assert raised.value.code == "rate_limit" and raised.value.http_status == 429
        assert sandbox.request_count() - before == 3  # the first try and exactly `retries` more: bounded
        assert impatient.requests_made == 3

    def test_rate_limited_calls_succeed_once_the_limit_lifts(self, sandbox: LocalSandbox) -> None:
        gateway = StripeGateway(
            Settings(), api_base=sandbox.base_url, rate_limit_backoff=RateLimitBackoff(base_delay=0.01, max_delay=0.05)
        )
        create(gateway)
        sandbox.faults(0.5, kinds="429", seed=3)
        listed = [[i.id for i in page] for _ in range(10) for page in gateway.list_intents(0)]
        sandbox.faults(0)
        assert len(listed) == 10 and len(set(map(tuple, listed))) == 1
        assert gateway.requests_made > 11  # 429s were met (1 create + 10 lists) and waited out

    def test_unavailable_after_network_retries(self, gateway: StripeGateway, sandbox: LocalSandbox) -> None:
        sandbox.faults(1.0, kinds="500,drop")
        before = sandbox.request_count()
        with pytest.raises(GatewayUnavailable):
            gateway.recent_events(1)
        assert sandbox.request_count() - before == 4  # the first try and stripe-python's 3 retries
        sandbox.faults(0)
        assert gateway.recent_events(1) == []


class TestRateLimitBackoff:
    backoff = RateLimitBackoff(retries=4, base_delay=0.5, max_delay=3.0)

    def test_retry_after_is_honoured_up_to_the_cap(self) -> None:
        assert self.backoff.delay({"Retry-After": "2"}, 0) == 2.0
        assert self.backoff.delay({"retry-after": "1.5"}, 3) == 1.5
        assert self.backoff.delay({"Retry-After": "3600"}, 0) == 3.0

    def test_exponential_with_jitter_when_no_retry_after(self) -> None:
        for attempt in range(4):
            for headers in ({}, {"Retry-After": "soon"}, None):
                delay = self.backoff.delay(headers, attempt)
                assert delay is not None
                assert 0.5 * 2**attempt * 0.5 <= delay <= min(0.5 * 2**attempt, 3.0)

    def test_gives_up_after_the_retries_or_when_told_not_to_retry(self) -> None:
        assert self.backoff.delay({}, 4) is None
        assert self.backoff.delay({"Retry-After": "1"}, 4) is None
        assert self.backoff.delay({"Stripe-Should-Retry": "false", "Retry-After": "1"}, 0) is None
        assert self.backoff.delay({"Stripe-Should-Retry": "true"}, 0) is not None


# A script using the gateway directly (load_settings refuses STRIPE_LOG=debug, so the app never gets here),
# with every logger at debug on stderr: it creates an intent, whose response body holds the client secret.
_DEBUG_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from dashboard.gateway import CreateIntentRequest, StripeGateway
from dashboard.settings import Settings
gateway = StripeGateway(Settings(), api_base=sys.argv[1])
request = CreateIntentRequest(12_000, "automatic", None, (), "http://localhost:8501/return")
print(gateway.create_alma_intent(request, "debug-log-check").intent.id)
"""


def test_with_stripe_log_debug_no_body_reaches_stderr(sandbox: LocalSandbox) -> None:
    env = {**os.environ, "STRIPE_LOG": "debug"}
    done = subprocess.run(
        [sys.executable, "-c", _DEBUG_SCRIPT, sandbox.base_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    intent_id = done.stdout.strip()
    assert intent_id.startswith("pi_")
    assert "Request to Stripe api" in done.stderr  # stripe's own lines are captured: silence would prove nothing
    assert "_secret_" not in done.stderr and "client_secret" not in done.stderr
    assert '"object"' not in done.stderr and "response body" not in done.stderr.lower()


def paid(gateway: StripeGateway, key: str, amount: int = 10_000, **fields: object) -> AlmaIntent:
    intent = create(gateway, key, amount=amount, **fields)
    assert intent.redirect_url is not None
    answer_alma_page(intent.redirect_url, "authorize")
    return gateway.retrieve_intent(intent.id)


class TestRefunds:
    def test_the_customer_given_at_creation_is_on_the_method_and_the_charge(self, gateway: StripeGateway) -> None:
        intent = paid(gateway, "c", customer_name="Léa Martin", customer_email="lea@example.com")
        assert (intent.customer_name, intent.customer_email) == ("Léa Martin", "lea@example.com")

    def test_a_partial_refund_is_pending_then_succeeds_on_the_sandbox_clock(
        self, gateway: StripeGateway, sandbox: LocalSandbox
    ) -> None:
        intent = paid(gateway, "p")
        key = submission_idempotency_key("refund", "s1", intent=intent.id, amount=1_000)
        refund = gateway.create_refund(RefundRequest(intent.id, 1_000, "requested_by_customer"), key)
        again = gateway.create_refund(RefundRequest(intent.id, 1_000, "requested_by_customer"), key)
        assert again == refund  # the same submission refunds once
        assert (refund.intent_id, refund.charge_id, refund.amount) == (intent.id, intent.latest_charge_id, 1_000)
        assert (refund.status, refund.reason) == ("pending", "requested_by_customer")
        sandbox.advance(301)
        assert gateway.retrieve_refund(refund.id).status == "succeeded"
        listed, moves = gateway.list_refunds(intent.created)
        assert [(r.id, r.status) for r in listed] == [(refund.id, "succeeded")]
        assert [(m.source_id, m.amount) for m in moves] == [(refund.id, -1_000)]

    def test_refunding_more_than_is_left_keeps_stripes_code(self, gateway: StripeGateway) -> None:
        intent = paid(gateway, "o")
        with pytest.raises(GatewayError) as raised:
            gateway.create_refund(RefundRequest(intent.id, 10_001, None), submission_idempotency_key("refund", "x"))
        assert raised.value.param == "amount"
        gateway.create_refund(RefundRequest(intent.id, None, None), submission_idempotency_key("refund", "full"))
        with pytest.raises(GatewayError) as again:
            gateway.create_refund(RefundRequest(intent.id, None, None), submission_idempotency_key("refund", "y"))
        assert again.value.code == "charge_already_refunded"

    def test_balance_transactions_carry_the_alma_fee_and_the_refund(self, gateway: StripeGateway) -> None:
        intent = paid(gateway, "f")
        gateway.create_refund(RefundRequest(intent.id, 2_500, None), submission_idempotency_key("refund", "f"))
        moves = {t.type: t for t in gateway.list_balance_transactions(intent.created)}
        fee = (10_000 * 350 + 5_000) // 10_000 + 25
        assert (moves["charge"].amount, moves["charge"].fee, moves["charge"].net) == (10_000, fee, 10_000 - fee)
        assert moves["charge"].source_id == intent.latest_charge_id
        assert (moves["refund"].amount, moves["refund"].net) == (-2_500, -2_500)

    def test_a_listing_brings_each_charges_fee_in_the_same_request(self, gateway: StripeGateway) -> None:
        intent = paid(gateway, "l")
        before = gateway.requests_made
        [listed] = [i for page in gateway.list_intents(intent.created) for i in page]
        assert gateway.requests_made == before + 1
        transaction = charge_balance_transaction(listed.raw)
        assert transaction is not None and transaction.source_id == intent.latest_charge_id and transaction.fee > 0
