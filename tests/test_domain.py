"""Alma rules on PaymentIntent payloads shaped as Stripe serialises them (the sandbox tests cover the wire)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dashboard.domain import (
    CAPTURE_WINDOW_SECONDS,
    DECLINED_CODE,
    EXPIRED_CODE,
    AlmaIntent,
    capture_deadline,
    expires_at,
    failure_kind,
    is_alma,
    seconds_left,
    waited_seconds,
)

WINDOW = 3600
T0 = 1_790_000_000


def payload(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": 12_000,
        "currency": "eur",
        "created": T0,
        "client_secret": "pi_1_secret_abc",
        "payment_method_types": ["alma"],
        "payment_method": None,
        "latest_charge": None,
        "last_payment_error": None,
        "next_action": None,
        "metadata": {},
    }
    return {**base, **fields}


def alma_charge(installments: int = 3) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "created": T0 + 60,
        "payment_method_details": {
            "type": "alma",
            "alma": {"installments": {"count": installments}, "transaction_id": "alma_tx_1"},
        },
    }


def failed_error(code: str, pm_type: str = "alma") -> dict[str, Any]:
    pm = {"id": "pm_1", "type": pm_type}
    return {"type": "invalid_request_error", "code": code, "message": "no", "payment_method": pm}


class TestDetection:
    def test_only_alma_allowed(self) -> None:
        assert is_alma(AlmaIntent.from_stripe(payload(payment_method_types=["alma"])))

    def test_card_only_is_not_alma(self) -> None:
        assert not is_alma(AlmaIntent.from_stripe(payload(payment_method_types=["card"])))

    def test_multi_method_unknown_choice_is_not_counted_yet(self) -> None:
        intent = AlmaIntent.from_stripe(payload(payment_method_types=["card", "alma"], payment_method="pm_1"))
        assert not is_alma(intent)

    def test_multi_method_with_expanded_alma_payment_method(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(payment_method_types=["card", "alma"], payment_method={"id": "pm_1", "type": "alma"})
        )
        assert is_alma(intent)
        assert intent.payment_method_id == "pm_1"

    def test_multi_method_with_expanded_card_payment_method(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(payment_method_types=["card", "alma"], payment_method={"id": "pm_1", "type": "card"})
        )
        assert not is_alma(intent)

    def test_multi_method_failed_with_alma(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(payment_method_types=["card", "alma"], last_payment_error=failed_error(DECLINED_CODE))
        )
        assert is_alma(intent)

    def test_multi_method_failed_with_card(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(payment_method_types=["card", "alma"], last_payment_error=failed_error("card_declined", "card"))
        )
        assert not is_alma(intent)

    def test_multi_method_charged_with_alma(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(status="succeeded", payment_method_types=["card", "alma"], latest_charge=alma_charge())
        )
        assert is_alma(intent)


class TestPayload:
    def test_client_secret_never_kept(self) -> None:
        intent = AlmaIntent.from_stripe(payload())
        assert "client_secret" not in intent.raw
        assert "secret" not in repr(intent)

    def test_expanded_charge_gives_installments_and_transaction(self) -> None:
        intent = AlmaIntent.from_stripe(payload(status="succeeded", latest_charge=alma_charge(4)))
        assert (intent.installments, intent.alma_transaction_id, intent.authorized_at) == (4, "alma_tx_1", T0 + 60)
        assert intent.latest_charge_id == "ch_1"

    def test_charge_id_only(self) -> None:
        intent = AlmaIntent.from_stripe(payload(status="succeeded", latest_charge="ch_1"))
        assert intent.latest_charge_id == "ch_1"
        assert intent.installments is None

    def test_with_charge_adds_installments_keeping_the_rest(self) -> None:
        intent = AlmaIntent.from_stripe(payload(status="succeeded", latest_charge="ch_1", description="order 7"))
        charged = intent.with_charge(alma_charge(2))
        assert (charged.installments, charged.alma_transaction_id) == (2, "alma_tx_1")
        assert (charged.status, charged.description, charged.amount) == ("succeeded", "order 7", 12_000)

    def test_metadata_sorted_pairs(self) -> None:
        intent = AlmaIntent.from_stripe(payload(metadata={"b": "2", "a": "1"}))
        assert intent.metadata == (("a", "1"), ("b", "2"))
        assert intent.metadata_dict == {"a": "1", "b": "2"}

    def test_an_expanded_method_dates_the_wait(self) -> None:
        method = {"id": "pm_1", "type": "alma", "created": T0 + 7}
        assert AlmaIntent.from_stripe(payload(status="requires_action", payment_method=method)).sent_to_alma_at == T0 + 7
        assert AlmaIntent.from_stripe(payload(status="requires_action", payment_method="pm_1")).sent_to_alma_at is None
        assert AlmaIntent.from_stripe(payload(status="succeeded", payment_method=method)).sent_to_alma_at is None

    def test_alma_capture_option_overrides_the_intent_capture_method(self) -> None:
        options = {"alma": {"capture_method": "manual"}}
        overridden = payload(capture_method="automatic_async", payment_method_options=options)
        assert AlmaIntent.from_stripe(overridden).capture_method == "manual"
        assert AlmaIntent.from_stripe(payload(capture_method="automatic_async")).capture_method == "automatic_async"
        assert AlmaIntent.from_stripe(payload()).capture_method == "automatic"

    def test_redirect_url_from_next_action(self) -> None:
        next_action = {"type": "redirect_to_url", "redirect_to_url": {"url": "http://x/alma/tok", "return_url": "r"}}
        intent = AlmaIntent.from_stripe(payload(status="requires_action", next_action=next_action))
        assert intent.redirect_url == "http://x/alma/tok"


def awaiting(sent_at: int | None = T0 + 10) -> AlmaIntent:
    return replace(AlmaIntent.from_stripe(payload(status="requires_action")), sent_to_alma_at=sent_at)


class TestWindow:
    def test_expires_one_window_after_sent(self) -> None:
        assert expires_at(awaiting(), WINDOW) == T0 + 10 + WINDOW

    def test_unknown_when_never_sent_or_not_waiting(self) -> None:
        assert expires_at(awaiting(None), WINDOW) is None
        assert expires_at(replace(awaiting(), status="succeeded"), WINDOW) is None

    def test_seconds_left_counts_down_to_zero(self) -> None:
        assert seconds_left(awaiting(), T0 + 10, WINDOW) == WINDOW
        assert seconds_left(awaiting(), T0 + 10 + WINDOW - 61, WINDOW) == 61
        assert seconds_left(awaiting(), T0 + 10 + WINDOW + 500, WINDOW) == 0


def failed(code: str, *, sent_at: int | None = None, updated_at: int | None = None) -> AlmaIntent:
    intent = AlmaIntent.from_stripe(payload(last_payment_error=failed_error(code)))
    return replace(intent, sent_to_alma_at=sent_at, updated_at=updated_at)


class TestFailureKind:
    def test_expired_code(self) -> None:
        assert failure_kind(failed(EXPIRED_CODE), WINDOW) == "expired"

    def test_declined_code(self) -> None:
        assert failure_kind(failed(DECLINED_CODE, sent_at=T0, updated_at=T0 + 120), WINDOW) == "declined"

    def test_failed_code_after_the_whole_window_counts_as_expired(self) -> None:
        assert failure_kind(failed(DECLINED_CODE, sent_at=T0, updated_at=T0 + WINDOW), WINDOW) == "expired"

    def test_not_failed(self) -> None:
        assert failure_kind(AlmaIntent.from_stripe(payload()), WINDOW) is None
        assert failure_kind(replace(failed(EXPIRED_CODE), status="succeeded"), WINDOW) is None

    def test_waited_seconds(self) -> None:
        assert waited_seconds(failed(DECLINED_CODE, sent_at=T0, updated_at=T0 + 95)) == 95
        assert waited_seconds(failed(DECLINED_CODE)) is None


class TestCaptureDeadline:
    def test_seven_days_after_authorisation(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(status="requires_capture", capture_method="manual", latest_charge=alma_charge())
        )
        assert capture_deadline(intent) == T0 + 60 + CAPTURE_WINDOW_SECONDS

    @pytest.mark.parametrize("status", ["succeeded", "canceled", "requires_action"])
    def test_none_unless_awaiting_capture(self, status: str) -> None:
        assert capture_deadline(AlmaIntent.from_stripe(payload(status=status, latest_charge=alma_charge()))) is None
