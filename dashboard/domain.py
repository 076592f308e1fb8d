"""What an Alma PaymentIntent is, and the facts derived from it. Pure: no I/O, no clock reads.

Timeline (the Intents detail page): `intent_milestones(intent, auth_window_seconds) -> list[Milestone]` says
what the intent itself proves happened (created, sent to Alma, authorised, succeeded/captured, canceled,
expired/declined with the code), so intents from the first sync, which has no events for them, still get a
timeline; `intent_timeline(intent, events, auth_window_seconds) -> list[TimelineEntry]` merges those with the
stored events (oldest first, Stripe's order within a second) into one list in which an event and the milestone
it proves are a single entry. `IntentStore.intent_timeline(intent_id)` does both for a stored intent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from dashboard.money import format_eur

STATUSES: tuple[str, ...] = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
)
CAPTURE_WINDOW_SECONDS = 7 * 24 * 3600
# Stripe's last_payment_error codes for an Alma attempt (the sandbox names its own copies the same way).
EXPIRED_CODE = "payment_intent_payment_attempt_expired"
FAILED_CODE = "payment_intent_payment_attempt_failed"  # declined, or expired without saying so: failure_kind

FailureKind = Literal["expired", "declined"]
# What Stripe can still cancel: every status but the two final ones.
CANCELABLE_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in ("succeeded", "canceled"))
CAPTURE_METHODS: tuple[str, ...] = ("automatic", "automatic_async", "manual")


def without_secrets(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Stripe object minus its client_secret: what may be kept, shown or stored."""
    return {key: value for key, value in payload.items() if key != "client_secret"}


@dataclass(frozen=True)
class LastPaymentError:
    """The intent's last_payment_error: why its latest attempt failed."""

    code: str | None
    message: str | None
    type: str | None
    payment_method_type: str | None  # from last_payment_error.payment_method.type
    # last_payment_error.payment_method.created: that attempt's method is made when the customer is sent to Alma
    payment_method_created: int | None = None


@dataclass(frozen=True)
class AlmaIntent:
    """A PaymentIntent as the dashboard keeps it. Deliberately has no client_secret field."""

    id: str
    status: str
    amount: int  # cents
    currency: str
    created: int  # unix seconds
    capture_method: str = "automatic"
    amount_received: int = 0
    amount_capturable: int = 0
    description: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    payment_method_types: tuple[str, ...] = ()
    payment_method_id: str | None = None
    payment_method_type: str | None = None  # known when payment_method was expanded
    last_error: LastPaymentError | None = None
    latest_charge_id: str | None = None
    charge_method_type: str | None = None  # latest_charge.payment_method_details.type
    installments: int | None = None
    alma_transaction_id: str | None = None
    authorized_at: int | None = None  # latest charge's created
    redirect_url: str | None = None  # next_action.redirect_to_url.url: an opaque token, not a secret
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    livemode: bool = False
    # billing_details given with the Alma method, repeated on the Charge (text from the customer: draw as text)
    customer_name: str | None = None
    customer_email: str | None = None
    # Not on Stripe's object: learned from events by the sync.
    sent_to_alma_at: int | None = None  # the payment_intent.requires_action event (or the expanded method's created)
    updated_at: int | None = None  # created of the event (or listing) that gave this state
    # Kept for the detail view's "raw" section; never contains client_secret (see from_stripe).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_stripe(cls, payload: Mapping[str, Any]) -> AlmaIntent:
        """Build from a PaymentIntent as Stripe serialises it (dict), latest_charge/payment_method
        either ids or expanded objects."""
        pm = payload.get("payment_method")
        pm_id, pm_type = (pm.get("id"), pm.get("type")) if isinstance(pm, Mapping) else (pm, None)
        # An Alma method is created by the confirmation that sends the customer to Alma (payment_method_data),
        # so an expanded one still attached dates that redirect even when its requires_action event is out of
        # reach (intents listed by the first sync). Before confirmation it proves nothing.
        sent_at = (
            pm.get("created")
            if isinstance(pm, Mapping) and pm_type == "alma" and payload["status"] != "requires_confirmation"
            else None
        )
        charge = payload.get("latest_charge")
        charge_fields: dict[str, Any] = _customer(pm) if isinstance(pm, Mapping) else {}
        if isinstance(charge, Mapping):
            details = charge.get("payment_method_details") or {}
            alma = details.get("alma") or {}
            charge_fields = {
                **charge_fields,
                **_customer(charge),
                "latest_charge_id": charge.get("id"),
                "charge_method_type": details.get("type"),
                "installments": (alma.get("installments") or {}).get("count"),
                "alma_transaction_id": alma.get("transaction_id"),
                "authorized_at": charge.get("created"),
            }
        else:
            charge_fields["latest_charge_id"] = charge
        err = payload.get("last_payment_error")
        last_error = None
        if isinstance(err, Mapping):
            err_pm = err.get("payment_method")
            last_error = LastPaymentError(
                code=err.get("code"),
                message=err.get("message"),
                type=err.get("type"),
                payment_method_type=err_pm.get("type") if isinstance(err_pm, Mapping) else None,
                payment_method_created=err_pm.get("created") if isinstance(err_pm, Mapping) else None,
            )
        if sent_at is None and last_error is not None and last_error.payment_method_type == "alma":
            sent_at = last_error.payment_method_created  # the failed attempt's method dates that redirect
        next_action = payload.get("next_action") or {}
        redirect = (next_action.get("redirect_to_url") or {}).get("url")
        raw = without_secrets(payload)
        return cls(
            id=payload["id"],
            status=payload["status"],
            amount=int(payload["amount"]),
            currency=payload["currency"],
            created=int(payload["created"]),
            capture_method=_alma_capture_method(payload),
            amount_received=int(payload.get("amount_received") or 0),
            amount_capturable=int(payload.get("amount_capturable") or 0),
            description=payload.get("description"),
            metadata=tuple(sorted((str(k), str(v)) for k, v in (payload.get("metadata") or {}).items())),
            payment_method_types=tuple(payload.get("payment_method_types") or ()),
            payment_method_id=pm_id,
            payment_method_type=pm_type,
            last_error=last_error,
            redirect_url=redirect,
            canceled_at=payload.get("canceled_at"),
            cancellation_reason=payload.get("cancellation_reason"),
            livemode=bool(payload.get("livemode")),
            sent_to_alma_at=sent_at,
            raw=raw,
            **charge_fields,
        )

    def with_charge(self, charge: Mapping[str, Any]) -> AlmaIntent:
        """The Charge carries installments; charge events bring it separately from the intent."""
        expanded = AlmaIntent.from_stripe({**self.raw, "id": self.id, "latest_charge": charge})
        return replace(
            self,
            latest_charge_id=expanded.latest_charge_id,
            charge_method_type=expanded.charge_method_type,
            installments=expanded.installments,
            alma_transaction_id=expanded.alma_transaction_id,
            authorized_at=expanded.authorized_at,
            customer_name=expanded.customer_name or self.customer_name,
            customer_email=expanded.customer_email or self.customer_email,
        )


def _customer(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The name and email of a PaymentMethod's or Charge's billing_details, when given."""
    details = payload.get("billing_details") or {}
    found = {"customer_name": details.get("name"), "customer_email": details.get("email")}
    return {key: value for key, value in found.items() if value}


RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]


@dataclass(frozen=True)
class Refund:
    """A refund of an intent's charge. Alma refunds are asynchronous: pending, then succeeded or failed."""

    id: str
    intent_id: str | None
    charge_id: str | None
    amount: int  # cents
    status: str
    reason: str | None
    created: int
    failure_reason: str | None = None

    @classmethod
    def from_stripe(cls, payload: Mapping[str, Any]) -> Refund:
        return cls(
            id=payload["id"],
            intent_id=_id_of(payload.get("payment_intent")),
            charge_id=_id_of(payload.get("charge")),
            amount=int(payload["amount"]),
            status=payload["status"],
            reason=payload.get("reason"),
            created=int(payload["created"]),
            failure_reason=payload.get("failure_reason"),
        )

    @property
    def counts(self) -> bool:
        """Money that left (or is leaving): a failed or canceled refund gave it back."""
        return self.status in ("pending", "requires_action", "succeeded")


@dataclass(frozen=True)
class BalanceTransaction:
    """Money moving on the Stripe balance: a charge (amount in, fee out) or a refund (negative amount)."""

    id: str
    type: str  # "charge" | "payment" | "refund" | "refund_failure" | …
    source_id: str | None  # the charge or refund that moved it
    amount: int  # cents, signed
    fee: int
    net: int  # amount - fee
    created: int

    @classmethod
    def from_stripe(cls, payload: Mapping[str, Any]) -> BalanceTransaction:
        return cls(
            id=payload["id"],
            type=payload["type"],
            source_id=_id_of(payload.get("source")),
            amount=int(payload["amount"]),
            fee=int(payload.get("fee") or 0),
            net=int(payload["net"]),
            created=int(payload["created"]),
        )


def charge_balance_transaction(intent_payload: Mapping[str, Any]) -> BalanceTransaction | None:
    """The charge's balance transaction when a listing expanded `latest_charge.balance_transaction`."""
    charge = intent_payload.get("latest_charge")
    transaction = charge.get("balance_transaction") if isinstance(charge, Mapping) else None
    return BalanceTransaction.from_stripe(transaction) if isinstance(transaction, Mapping) else None


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, Mapping) else value


def _alma_capture_method(payload: Mapping[str, Any]) -> str:
    """payment_method_options.alma.capture_method, when set, overrides the intent's own for Alma payments."""
    alma_options = (payload.get("payment_method_options") or {}).get("alma") or {}
    return alma_options.get("capture_method") or payload.get("capture_method") or "automatic"


def is_alma(intent: AlmaIntent) -> bool:
    """Lists cannot filter by method, so Alma is recognised from whatever the intent reveals."""
    if intent.payment_method_types == ("alma",):
        return True
    if intent.payment_method_type == "alma" or intent.charge_method_type == "alma":
        return True
    return intent.last_error is not None and intent.last_error.payment_method_type == "alma"


def auth_window_end(sent_to_alma_at: int | None, auth_window_seconds: int) -> int | None:
    """When the customer's time on the Alma page runs out (None while the redirect's time is unknown)."""
    return None if sent_to_alma_at is None else sent_to_alma_at + auth_window_seconds


def expires_at(intent: AlmaIntent, auth_window_seconds: int) -> int | None:
    """When an intent waiting on the customer returns to requires_payment_method."""
    if intent.status != "requires_action":
        return None
    return auth_window_end(intent.sent_to_alma_at, auth_window_seconds)


def failure_kind(intent: AlmaIntent, auth_window_seconds: int) -> FailureKind | None:
    """Expired (the window ran out) versus declined (the customer or Alma refused)."""
    if intent.status != "requires_payment_method" or intent.last_error is None:
        return None
    code = intent.last_error.code
    if code == EXPIRED_CODE:
        return "expired"
    if code == FAILED_CODE:
        window_end = auth_window_end(intent.sent_to_alma_at, auth_window_seconds)
        if window_end is not None and intent.updated_at is not None and intent.updated_at >= window_end:
            return "expired"  # no customer action before expires_at, whatever the code says
        return "declined"
    return "declined"


# The metadata pair Test lab puts on every intent it creates (dashboard.lab): an intent is the lab's when its
# metadata holds exactly this key and value. Here, beside the intent, so the stored frame can say it per row.
TEST_LAB_TAG = ("alma_ops_source", "test_lab")


def is_test_lab_intent(metadata: Iterable[tuple[str, str]]) -> bool:
    return TEST_LAB_TAG in tuple(metadata)


# -- outcome: a status and its failure in words ----------------------------------------------------------------

# What every chart, table, badge and CSV says for an intent, in the order stacks and legends list them: money in
# first, then what still waits, then what was lost. requires_payment_method reads by its failure (Expired,
# Declined) or, with none, as Not started. A status Stripe may add later reads as Other.
OUTCOMES: tuple[str, ...] = (
    "Succeeded",
    "Awaiting capture",
    "Processing",
    "Awaiting customer",
    "Awaiting confirmation",
    "Not started",
    "Expired",
    "Declined",
    "Canceled",
    "Other",
)
OUTCOME_OF_STATUS: dict[str, str] = {
    "succeeded": "Succeeded",
    "requires_capture": "Awaiting capture",
    "processing": "Processing",
    "requires_action": "Awaiting customer",
    "requires_confirmation": "Awaiting confirmation",
    "requires_payment_method": "Not started",
    "canceled": "Canceled",
}
OUTCOME_OF_FAILURE: dict[str, str] = {"expired": "Expired", "declined": "Declined"}


def outcome(status: str, kind: str | None) -> str:
    """The one label for an API status and its failure kind (failure_kind): "Awaiting customer", "Expired"…"""
    if status == "requires_payment_method" and kind in OUTCOME_OF_FAILURE:
        return OUTCOME_OF_FAILURE[kind]
    return OUTCOME_OF_STATUS.get(status, "Other")


def intent_outcome(intent: AlmaIntent, auth_window_seconds: int) -> str:
    return outcome(intent.status, failure_kind(intent, auth_window_seconds))


def capture_deadline(intent: AlmaIntent) -> int | None:
    """Uncaptured manual-capture intents are canceled 7 days after authorisation."""
    if intent.status != "requires_capture":
        return None
    start = intent.authorized_at or intent.updated_at or intent.created
    return start + CAPTURE_WINDOW_SECONDS


# -- timeline -------------------------------------------------------------------------------------------------

MilestoneKind = Literal[
    "created", "sent_to_alma", "authorized", "succeeded", "captured", "canceled", "expired", "declined"
]


@dataclass(frozen=True)
class Milestone:
    at: int | None  # unix seconds; None: the intent proves it happened but not when (the event, if stored, will)
    label: str
    kind: MilestoneKind


@dataclass(frozen=True)
class TimelineEntry:
    at: int | None
    label: str
    kind: str  # a MilestoneKind, or "event" for an event that proves no milestone
    event_id: str | None = None  # None: known from the intent only (no stored event says it)
    event_type: str | None = None


class EventRecord(Protocol):
    """What the timeline needs of an event (store.StoredEvent is one)."""

    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def created(self) -> int: ...


# event type -> (the milestones it can prove, its label when it proves none); other types prove nothing
_EVENT_MEANINGS: dict[str, tuple[frozenset[str], str]] = {
    "payment_intent.created": (frozenset({"created"}), "Created"),
    "payment_intent.requires_action": (frozenset({"sent_to_alma"}), "Sent to Alma"),
    "payment_intent.amount_capturable_updated": (frozenset({"authorized"}), "Authorised, awaiting capture"),
    "charge.succeeded": (frozenset({"authorized"}), "Charge authorised"),
    "payment_intent.succeeded": (frozenset({"succeeded", "captured"}), "Succeeded"),
    "charge.captured": (frozenset({"captured"}), "Charge captured"),
    "payment_intent.canceled": (frozenset({"canceled"}), "Canceled"),
    "payment_intent.payment_failed": (frozenset({"expired", "declined"}), "Payment failed"),
    "payment_intent.processing": (frozenset(), "Processing"),
    "payment_intent.partially_funded": (frozenset(), "Partially funded"),
    "charge.updated": (frozenset(), "Charge updated"),
    "charge.refunded": (frozenset(), "Refunded"),  # an authorisation released when nothing was captured
    "refund.created": (frozenset(), "Refund requested"),
    "refund.updated": (frozenset(), "Refund updated"),
    "refund.failed": (frozenset(), "Refund failed"),
    "charge.refund.updated": (frozenset(), "Refund updated"),
    "charge.expired": (frozenset(), "Authorisation expired"),
}


def _event_meaning(event_type: str, intent: AlmaIntent) -> tuple[frozenset[str], str]:
    if event_type == "charge.refunded" and intent.amount_received == 0:
        # Canceling an uncaptured authorisation refunds the hold: no money had moved.
        return frozenset(), "Authorisation released"
    return _EVENT_MEANINGS.get(event_type, (frozenset(), event_type))


# Milestones that can recur (a customer sent to Alma again after a decline) are matched by time; the others
# describe the current state, which the latest event of their kind brought.
_MATCHED_BY_TIME = frozenset({"created", "sent_to_alma", "authorized"})
MILESTONE_MATCH_SECONDS = 60  # the intent's own times and its events' can differ by a moment
# Lifecycle order, for entries of the same second that come from different sources.
_RANK = {"created": 0, "sent_to_alma": 1, "event": 2, "authorized": 3}
_LAST_RANK = 4


def intent_milestones(intent: AlmaIntent, auth_window_seconds: int) -> list[Milestone]:
    """What the intent proves happened, oldest first; times unknown to the intent (None) come last."""
    error = intent.last_error
    sent_at = intent.sent_to_alma_at
    milestones = [Milestone(intent.created, "Created", "created")]
    if sent_at is not None:
        milestones.append(Milestone(sent_at, "Sent to Alma", "sent_to_alma"))
    if intent.authorized_at is not None:
        plan = f" — {intent.installments} installments" if intent.installments else ""
        milestones.append(Milestone(intent.authorized_at, f"Authorised by Alma{plan}", "authorized"))
    if intent.status == "succeeded":
        if intent.capture_method == "manual":
            partial = intent.amount_received < intent.amount
            amount = f" {format_eur(intent.amount_received)} of {format_eur(intent.amount)}" if partial else ""
            milestones.append(Milestone(None, f"Captured{amount}", "captured"))
        else:
            milestones.append(Milestone(intent.authorized_at, "Succeeded", "succeeded"))
    if intent.status == "canceled":
        reason = f" ({intent.cancellation_reason})" if intent.cancellation_reason else ""
        milestones.append(Milestone(intent.canceled_at, f"Canceled{reason}", "canceled"))
    kind = failure_kind(intent, auth_window_seconds)
    if kind is not None:
        code = f" ({error.code})" if error is not None and error.code else ""
        window_end = auth_window_end(sent_at, auth_window_seconds) if kind == "expired" else None
        milestones.append(Milestone(window_end, f"{kind.capitalize()}{code}", kind))
    return sorted(milestones, key=_milestone_order)


def _milestone_order(milestone: Milestone) -> tuple[bool, int, int]:
    return (milestone.at is None, *_lifecycle_order(milestone.at, milestone.kind))


def _lifecycle_order(at: int | None, kind: str) -> tuple[int, int]:
    return (at or 0, _RANK.get(kind, _LAST_RANK))


def intent_timeline(intent: AlmaIntent, events: Sequence[EventRecord], auth_window_seconds: int) -> list[TimelineEntry]:
    """The intent's milestones and its stored events (oldest first, Stripe's order within a second) as one
    list: an event that proves a milestone is one entry with the milestone's label and the event's time;
    milestones no stored event proves keep the intent's time; events keep their order."""
    meanings = [_event_meaning(event.type, intent) for event in events]
    proven: dict[int, Milestone] = {}  # event index -> the milestone it proves
    unproven: list[Milestone] = []
    for milestone in intent_milestones(intent, auth_window_seconds):
        candidates = [i for i, (kinds, _) in enumerate(meanings) if milestone.kind in kinds and i not in proven]
        if milestone.kind in _MATCHED_BY_TIME and milestone.at is not None:
            at = milestone.at
            near = [i for i in candidates if abs(events[i].created - at) <= MILESTONE_MATCH_SECONDS]
            candidates = [min(near, key=lambda i: abs(events[i].created - at))] if near else []
        if candidates:
            proven[candidates[-1]] = milestone
        else:
            unproven.append(milestone)
    event_entries = [
        TimelineEntry(event.created, proven[i].label, proven[i].kind, event.id, event.type)
        if i in proven
        else TimelineEntry(event.created, meanings[i][1], "event", event.id, event.type)
        for i, event in enumerate(events)
    ]
    return _merge(event_entries, [TimelineEntry(m.at, m.label, m.kind) for m in unproven])


def _merge(events: list[TimelineEntry], milestones: list[TimelineEntry]) -> list[TimelineEntry]:
    """Slot the milestones (sorted, unknown times last) between the events without reordering the events."""
    merged: list[TimelineEntry] = []
    pending = list(milestones)
    for event in events:
        while (
            pending
            and pending[0].at is not None
            and (_lifecycle_order(pending[0].at, pending[0].kind) < _lifecycle_order(event.at, event.kind))
        ):
            merged.append(pending.pop(0))
        merged.append(event)
    return merged + pending
