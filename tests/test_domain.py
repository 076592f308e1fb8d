"""Alma rules on PaymentIntent payloads shaped as Stripe serialises them (the sandbox tests cover the wire)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from dashboard.domain import (
    CAPTURE_WINDOW_SECONDS,
    EXPIRED_CODE,
    FAILED_CODE,
    AlmaIntent,
    Milestone,
    TimelineEntry,
    capture_deadline,
    expires_at,
    failure_kind,
    intent_milestones,
    intent_timeline,
    is_alma,
)
from dashboard.settings import AUTH_WINDOW_SECONDS

WINDOW = AUTH_WINDOW_SECONDS
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
            payload(payment_method_types=["card", "alma"], last_payment_error=failed_error(FAILED_CODE))
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

    def test_an_expanded_alma_method_dates_the_redirect(self) -> None:
        method = {"id": "pm_1", "type": "alma", "created": T0 + 7}
        for status in ("requires_action", "requires_capture", "succeeded", "canceled"):
            assert AlmaIntent.from_stripe(payload(status=status, payment_method=method)).sent_to_alma_at == T0 + 7
        assert AlmaIntent.from_stripe(payload(status="requires_action", payment_method="pm_1")).sent_to_alma_at is None
        not_yet_sent = payload(status="requires_confirmation", payment_method=method)
        assert AlmaIntent.from_stripe(not_yet_sent).sent_to_alma_at is None
        card = payload(status="succeeded", payment_method={**method, "type": "card"})
        assert AlmaIntent.from_stripe(card).sent_to_alma_at is None

    def test_a_failed_attempt_keeps_when_its_method_was_made(self) -> None:
        error = {**failed_error(FAILED_CODE), "payment_method": {"id": "pm_1", "type": "alma", "created": T0 + 9}}
        intent = AlmaIntent.from_stripe(payload(last_payment_error=error))
        assert intent.last_error is not None and intent.last_error.payment_method_created == T0 + 9
        assert intent.sent_to_alma_at == T0 + 9  # its method was made by the redirect: "waited" is known
        assert expires_at(intent, 3600) is None  # the attempt is over: the intent is not waiting on anyone

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


def failed(code: str, *, sent_at: int | None = None, updated_at: int | None = None) -> AlmaIntent:
    intent = AlmaIntent.from_stripe(payload(last_payment_error=failed_error(code)))
    return replace(intent, sent_to_alma_at=sent_at, updated_at=updated_at)


class TestFailureKind:
    def test_expired_code(self) -> None:
        assert failure_kind(failed(EXPIRED_CODE), WINDOW) == "expired"

    def test_declined_code(self) -> None:
        assert failure_kind(failed(FAILED_CODE, sent_at=T0, updated_at=T0 + 120), WINDOW) == "declined"

    def test_failed_code_after_the_whole_window_counts_as_expired(self) -> None:
        assert failure_kind(failed(FAILED_CODE, sent_at=T0, updated_at=T0 + WINDOW), WINDOW) == "expired"
        assert failure_kind(failed(FAILED_CODE, sent_at=T0, updated_at=T0 + WINDOW - 1), WINDOW) == "declined"

    def test_not_failed(self) -> None:
        assert failure_kind(AlmaIntent.from_stripe(payload()), WINDOW) is None
        assert failure_kind(replace(failed(EXPIRED_CODE), status="succeeded"), WINDOW) is None


class TestCaptureDeadline:
    def test_seven_days_after_authorisation(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(status="requires_capture", capture_method="manual", latest_charge=alma_charge())
        )
        assert capture_deadline(intent) == T0 + 60 + CAPTURE_WINDOW_SECONDS

    @pytest.mark.parametrize("status", ["succeeded", "canceled", "requires_action"])
    def test_none_unless_awaiting_capture(self, status: str) -> None:
        assert capture_deadline(AlmaIntent.from_stripe(payload(status=status, latest_charge=alma_charge()))) is None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: int


def alma_method(created: int) -> dict[str, Any]:
    return {"id": "pm_1", "type": "alma", "created": created}


def kinds_and_times(entries: list[Any]) -> list[tuple[str, int | None]]:
    return [(entry.kind, entry.at) for entry in entries]


class TestMilestones:
    def test_waiting_on_the_customer(self) -> None:
        intent = AlmaIntent.from_stripe(payload(status="requires_action", payment_method=alma_method(T0)))
        assert intent_milestones(intent, WINDOW) == [
            Milestone(T0, "Created", "created"),
            Milestone(T0, "Sent to Alma", "sent_to_alma"),
        ]

    def test_paid_automatically(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(status="succeeded", payment_method=alma_method(T0 + 5), latest_charge=alma_charge(4))
        )
        assert intent_milestones(intent, WINDOW) == [
            Milestone(T0, "Created", "created"),
            Milestone(T0 + 5, "Sent to Alma", "sent_to_alma"),
            Milestone(T0 + 60, "Authorised by Alma — 4 installments", "authorized"),
            Milestone(T0 + 60, "Succeeded", "succeeded"),
        ]

    def test_captured_in_part_later(self) -> None:
        intent = AlmaIntent.from_stripe(
            payload(status="succeeded", capture_method="manual", amount_received=10_000, latest_charge=alma_charge(2))
        )
        milestones = intent_milestones(intent, WINDOW)
        assert milestones[-1] == Milestone(None, "Captured €100.00 of €120.00", "captured")  # when: events only
        assert [m.kind for m in milestones] == ["created", "authorized", "captured"]

    def test_awaiting_capture_and_canceled(self) -> None:
        held = AlmaIntent.from_stripe(payload(status="requires_capture", latest_charge=alma_charge()))
        assert [m.kind for m in intent_milestones(held, WINDOW)] == ["created", "authorized"]
        canceled = AlmaIntent.from_stripe(
            payload(status="canceled", canceled_at=T0 + 99, cancellation_reason="requested_by_customer")
        )
        assert intent_milestones(canceled, WINDOW)[-1] == Milestone(
            T0 + 99, "Canceled (requested_by_customer)", "canceled"
        )

    def test_expired_at_the_end_of_the_window_declined_when_told(self) -> None:
        error = {**failed_error(EXPIRED_CODE), "payment_method": alma_method(T0 + 10)}
        expired = AlmaIntent.from_stripe(payload(last_payment_error=error))
        assert intent_milestones(expired, WINDOW) == [
            Milestone(T0, "Created", "created"),
            Milestone(T0 + 10, "Sent to Alma", "sent_to_alma"),
            Milestone(T0 + 10 + WINDOW, f"Expired ({EXPIRED_CODE})", "expired"),
        ]
        declined = AlmaIntent.from_stripe(payload(last_payment_error={**error, "code": FAILED_CODE}))
        assert intent_milestones(declined, WINDOW)[-1] == Milestone(None, f"Declined ({FAILED_CODE})", "declined")


def paid_manually() -> AlmaIntent:
    return AlmaIntent.from_stripe(
        payload(
            status="succeeded",
            capture_method="manual",
            amount_received=12_000,
            payment_method=alma_method(T0),
            latest_charge=alma_charge(3),
        )
    )


class TestTimeline:
    def test_without_events_the_milestones_are_the_timeline(self) -> None:
        entries = intent_timeline(paid_manually(), [], WINDOW)
        assert kinds_and_times(entries) == [
            ("created", T0),
            ("sent_to_alma", T0),
            ("authorized", T0 + 60),
            ("captured", None),
        ]
        assert all(entry.event_id is None for entry in entries)

    def test_an_event_and_the_milestone_it_proves_are_one_entry(self) -> None:
        events = [
            Event("evt_1", "payment_intent.created", T0),
            Event("evt_2", "payment_intent.requires_action", T0),
            Event("evt_3", "charge.succeeded", T0 + 60),
            Event("evt_4", "payment_intent.amount_capturable_updated", T0 + 60),
            Event("evt_5", "charge.captured", T0 + 500),
            Event("evt_6", "payment_intent.succeeded", T0 + 500),
        ]
        entries = intent_timeline(paid_manually(), events, WINDOW)
        assert [entry.event_id for entry in entries] == [e.id for e in events]  # every event once, in order
        assert [entry.kind for entry in entries] == [
            "created",
            "sent_to_alma",
            "authorized",
            "event",
            "event",
            "captured",
        ]
        assert entries[2].label == "Authorised by Alma — 3 installments"
        assert entries[3].label == "Authorised, awaiting capture" and entries[4].label == "Charge captured"
        assert entries[5] == TimelineEntry(T0 + 500, "Captured", "captured", "evt_6", "payment_intent.succeeded")

    def test_events_keep_stripes_order_within_a_second(self) -> None:
        """A same-second tie is the store's (created, sequence) order, never re-sorted by label or kind."""
        retried = AlmaIntent.from_stripe(payload(status="requires_action", payment_method=alma_method(T0 + 30)))
        events = [
            Event("evt_1", "payment_intent.created", T0),
            Event("evt_2", "payment_intent.requires_action", T0),
            Event("evt_3", "payment_intent.payment_failed", T0 + 30),
            Event("evt_4", "payment_intent.requires_action", T0 + 30),
        ]
        entries = intent_timeline(retried, events, WINDOW)
        assert [entry.event_id for entry in entries] == ["evt_1", "evt_2", "evt_3", "evt_4"]
        assert [entry.kind for entry in entries] == ["created", "event", "event", "sent_to_alma"]

    def test_a_partial_history_is_completed_by_the_milestones(self) -> None:
        """The first sync stored no events for this intent; the capture came later, as events."""
        events = [Event("evt_5", "charge.captured", T0 + 500), Event("evt_6", "payment_intent.succeeded", T0 + 500)]
        entries = intent_timeline(paid_manually(), events, WINDOW)
        assert kinds_and_times(entries) == [
            ("created", T0),
            ("sent_to_alma", T0),
            ("authorized", T0 + 60),
            ("event", T0 + 500),
            ("captured", T0 + 500),
        ]
        assert [entry.event_id for entry in entries] == [None, None, None, "evt_5", "evt_6"]

    def test_a_milestone_far_from_any_event_of_its_kind_stays_apart(self) -> None:
        """Sent to Alma twice; only the first attempt's event is stored."""
        again = AlmaIntent.from_stripe(payload(status="requires_action", payment_method=alma_method(T0 + 4000)))
        events = [Event("evt_1", "payment_intent.created", T0), Event("evt_2", "payment_intent.requires_action", T0)]
        entries = intent_timeline(again, events, WINDOW)
        assert kinds_and_times(entries) == [("created", T0), ("event", T0), ("sent_to_alma", T0 + 4000)]
        assert entries[1].label == "Sent to Alma" and entries[1].event_id == "evt_2"

    def test_a_failure_takes_the_time_of_its_event(self) -> None:
        declined = AlmaIntent.from_stripe(payload(last_payment_error=failed_error(FAILED_CODE)))
        events = [Event("evt_9", "payment_intent.payment_failed", T0 + 200), Event("evt_a", "charge.updated", T0 + 201)]
        entries = intent_timeline(declined, events, WINDOW)
        assert kinds_and_times(entries) == [("created", T0), ("declined", T0 + 200), ("event", T0 + 201)]
        assert entries[1].label == f"Declined ({FAILED_CODE})" and entries[2].label == "Charge updated"
