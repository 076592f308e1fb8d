"""The sandbox's in-memory Stripe account: immutable object versions and the Alma lifecycle.

Refunds are asynchronous, as Alma's are: created `pending`, they settle `rules.refund_delay` seconds later on
the sandbox clock (default 5 minutes). A refund created with `metadata[sandbox_refund]=fail` fails when it
settles (`failure_reason: declined`), which is how a test makes one fail. Money movements are balance
transactions: one per captured charge (fee = `rules.fee_basis_points` of the amount plus `rules.fee_fixed`,
default 3.50% + €0.25, since Stripe publishes no single Alma rate), one (negative, fee-free) per refund, and a
`refund_failure` one giving the money back when a refund fails.

Every change replaces an object with a new frozen version, so an event can hold the version "as the object
stood then" for free. Each status change is one method of `Sandbox`, guarded by `TRANSITIONS`; nothing else
writes a status. Methods take the instant `at` explicitly: the clock lives outside the model, which lets the
demo seed and the expiry sweep replay history at past instants through the very same transitions.
"""

from __future__ import annotations

import heapq
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .errors import StripeApiError, invalid_request, parameter_invalid, resource_missing, unexpected_state
from .index import CreatedIndex

DAY_SECONDS = 24 * 3600
CAPTURE_WINDOW_SECONDS = 7 * DAY_SECONDS
REFUND_WINDOW_SECONDS = 180 * DAY_SECONDS  # Alma accepts refunds up to 180 days after the payment
AVAILABLE_AFTER_DAYS = 7  # a charge's funds become available (for payouts) at midnight UTC 7 days later
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
REFUND_FAILURE_FLAG = ("sandbox_refund", "fail")  # metadata key and value that make a refund fail
ALMA = "alma"
ALMA_CURRENCY = "eur"
ALMA_SCOPE = "Alma payments"  # as amount errors name whose limits apply
STRIPE_MINIMUM_EUR_CENTS = 50
STRIPE_MAXIMUM_AMOUNT = 99_999_999  # "The amount value supports up to eight digits" (Stripe's API reference)
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")  # a caller's
AUTOMATIC_CANCELLATION = "automatic"  # Stripe's own, when the capture window lapses
INSTALLMENT_COUNTS = (2, 3, 4)
FAILED_CODE = "payment_intent_payment_attempt_failed"
EXPIRED_CODE = "payment_intent_payment_attempt_expired"


@dataclass(frozen=True)
class AlmaRules:
    min_amount: int = 5_000  # cents
    max_amount: int = 500_000
    auth_window: int = 3600  # seconds a customer has on Alma's page
    refund_delay: int = 300  # seconds a refund stays pending
    fee_basis_points: int = 350  # the Alma fee: 3.50% of the amount ...
    fee_fixed: int = 25  # ... plus 25 cents

    def fee(self, amount: int) -> int:
        return (amount * self.fee_basis_points + 5_000) // 10_000 + self.fee_fixed  # rounded half up


@dataclass(frozen=True, slots=True)
class RequestRef:
    """The API request that caused an event (Event.request); None for the customer's or the clock's doing."""

    id: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """`billing_details` as given in `payment_method_data`: kept on the PaymentMethod, repeated on the Charge."""

    name: str | None = None
    email: str | None = None


NO_CUSTOMER = Customer()


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    id: str
    created: int
    type: str = ALMA
    billing: Customer = NO_CUSTOMER


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    created: int
    amount: int
    currency: str
    payment_intent: str
    payment_method: str
    installments: int
    transaction_id: str
    description: str | None
    metadata: Mapping[str, str]
    captured: bool
    amount_captured: int = 0
    amount_refunded: int = 0
    billing: Customer = NO_CUSTOMER
    balance_transaction: str | None = None  # set once captured


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    created: int
    amount: int
    currency: str
    charge: str
    payment_intent: str
    reason: str | None
    metadata: Mapping[str, str]
    balance_transaction: str
    status: str = "pending"
    failure_reason: str | None = None
    failure_balance_transaction: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """Money moving on the account: never changes once made (its `status` is derived from the clock)."""

    id: str
    created: int
    amount: int  # negative for a refund
    fee: int
    currency: str
    source: str  # the Charge or Refund it comes from
    type: str  # charge, refund, refund_failure
    available_on: int

    @property
    def net(self) -> int:
        return self.amount - self.fee


@dataclass(frozen=True, slots=True)
class PaymentError:
    code: str
    message: str
    payment_method: str


@dataclass(frozen=True, slots=True)
class Redirect:
    """An open Alma attempt: the customer's page is addressed by `token`, which is never the client secret."""

    token: str
    return_url: str
    deadline: int


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    id: str
    created: int
    amount: int
    currency: str
    client_secret: str
    status: str
    capture_method: str
    payment_method_types: tuple[str, ...]
    description: str | None
    metadata: Mapping[str, str]
    automatic_payment_methods: bool
    alma_capture_method: str | None  # payment_method_options[alma][capture_method]
    payment_method: str | None = None
    latest_charge: str | None = None
    last_payment_error: PaymentError | None = None
    redirect: Redirect | None = None
    amount_capturable: int = 0
    amount_received: int = 0
    canceled_at: int | None = None
    cancellation_reason: str | None = None

    @property
    def captures_manually(self) -> bool:
        return (self.alma_capture_method or self.capture_method) == "manual"


EventObject = PaymentIntent | Charge | Refund


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    created: int
    type: str
    object: EventObject
    request: RequestRef | None


@dataclass(frozen=True)
class IntentDraft:
    """POST /v1/payment_intents, already typed by the handler."""

    amount: int
    currency: str
    payment_method_types: tuple[str, ...]
    automatic_payment_methods: bool
    capture_method: str
    alma_capture_method: str | None
    description: str | None
    metadata: Mapping[str, str]
    payment_method_type: str | None  # payment_method_data[type]
    confirm: bool
    return_url: str | None
    billing: Customer = NO_CUSTOMER  # payment_method_data[billing_details]


@dataclass(frozen=True)
class Attempt:
    """What a confirm brings (POST .../confirm, or create with confirm=true)."""

    payment_method_type: str | None  # payment_method_data[type]; None: reuse the attached method
    return_url: str | None
    capture_method: str | None = None  # None: keep the intent's
    alma_capture_method: str | None = None
    billing: Customer = NO_CUSTOMER


@dataclass(frozen=True)
class RefundDraft:
    """POST /v1/refunds, already typed by the handler: exactly one of `charge` and `payment_intent`."""

    charge: str | None
    payment_intent: str | None
    amount: int | None  # None: whatever is left to refund
    reason: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class Transition:
    # As Stripe words its state errors: "You cannot {verb} this PaymentIntent ... may be {participle}: ..."
    verb: str
    participle: str
    sources: tuple[str, ...]
    noun: str = "PaymentIntent"


TRANSITIONS: dict[str, Transition] = {
    "confirm": Transition(
        "confirm", "confirmed", ("requires_payment_method", "requires_confirmation", "requires_action")
    ),
    "authorize": Transition("authorize", "authorized", ("requires_action",)),
    "fail_attempt": Transition("fail", "failed", ("requires_action",)),
    "capture": Transition("capture", "captured", ("requires_capture",)),
    "cancel": Transition(
        "cancel",
        "canceled",
        ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"),
    ),
    # Refunds: only the clock settles them, so these guard the sweep rather than answer a caller.
    "refund_succeed": Transition("succeed", "succeeded", ("pending",), "Refund"),
    "refund_fail": Transition("fail", "failed", ("pending",), "Refund"),
}

DeadlineKind = Literal["auth_expiry", "capture_expiry", "refund_settles"]
AttemptOutcome = Literal["approved", "declined", "expired", "canceled", "replaced"]


@dataclass(frozen=True, slots=True)
class ClosedAttempt:
    """A hosted page that no longer takes an answer: how its attempt ended and where the customer goes back."""

    intent_id: str
    return_url: str
    outcome: AttemptOutcome


def attempt_outcome(event_type: str, after: PaymentIntent) -> AttemptOutcome:
    """How the attempt open before `after` (the version `event_type` announces) ended."""
    if event_type == "payment_intent.payment_failed":
        failure = after.last_payment_error
        return "expired" if failure is not None and failure.code == EXPIRED_CODE else "declined"
    if event_type == "payment_intent.canceled":
        return "canceled"
    if event_type == "payment_intent.requires_action":
        return "replaced"  # confirmed again: a new page, a new token
    return "approved"


class IdFactory:
    """Stripe-looking ids: prefix + 24 alphanumerics, from the operating system's CSPRNG (`secrets`): ids,
    client secrets and hosted-page tokens must not be predictable from ones already seen, as a Mersenne
    Twister's are. Bytes are drawn a buffer at a time (seeding 100k intents mints ~1M ids) and mapped onto
    the alphabet with one `translate`; the slight bias (256 is not a multiple of 62) leaves ~5.95 bits of
    entropy per character, ~143 bits per 24-character id."""

    _BYTE_TO_CHAR = ((string.ascii_letters + string.digits).encode() * 5)[:256]
    _BUFFER_BYTES = 64 * 1024

    def __init__(self) -> None:
        self._characters = ""  # drawn ahead, already mapped onto the alphabet
        self._position = 0

    def new(self, prefix: str, length: int = 24) -> str:
        start = self._position
        if start + length > len(self._characters):
            drawn = secrets.token_bytes(max(self._BUFFER_BYTES, length))
            self._characters, start = drawn.translate(self._BYTE_TO_CHAR).decode(), 0
        self._position = start + length
        return prefix + self._characters[start : start + length]


@dataclass
class Sandbox:
    rules: AlmaRules
    ids: IdFactory = field(default_factory=IdFactory)
    intents: dict[str, PaymentIntent] = field(default_factory=dict)
    payment_methods: dict[str, PaymentMethod] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    balance_transactions: dict[str, BalanceTransaction] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    event_types: set[str] = field(default_factory=set)  # every type an event of this account has
    intent_index: CreatedIndex = field(default_factory=CreatedIndex)
    event_index: CreatedIndex = field(default_factory=CreatedIndex)
    refund_index: CreatedIndex = field(default_factory=CreatedIndex)
    balance_index: CreatedIndex = field(default_factory=CreatedIndex)
    tokens: dict[str, str] = field(default_factory=dict)  # redirect token -> intent id
    closed_attempts: dict[str, ClosedAttempt] = field(default_factory=dict)  # spent token -> how it ended
    # (deadline, sequence, kind, intent id, marker): the marker names the attempt/charge the deadline was
    # set for, so a deadline outlived by a later change is recognised and dropped.
    deadlines: list[tuple[int, int, DeadlineKind, str, str]] = field(default_factory=list)
    _deadline_sequence: int = 0
    _bulk: list[tuple[CreatedIndex, int, str]] | None = None

    @classmethod
    def restored(
        cls,
        rules: AlmaRules,
        payment_methods: Iterable[PaymentMethod],
        charges: Iterable[Charge],
        intents: Iterable[PaymentIntent],
        events: Iterable[Event],
        refunds: Iterable[Refund] = (),
        balance_transactions: Iterable[BalanceTransaction] = (),
    ) -> Sandbox:
        """An account read back from its facts: `intents`, `refunds` and `balance_transactions` in creation
        order, `events` in time order. What is derived from them (indexes, hosted-page tokens, pending
        deadlines) is rebuilt, not stored."""
        sandbox = cls(rules)
        sandbox.payment_methods = {payment_method.id: payment_method for payment_method in payment_methods}
        sandbox.charges = {charge.id: charge for charge in charges}
        sandbox.intents = {intent.id: intent for intent in intents}
        sandbox.events = {event.id: event for event in events}
        sandbox.event_types = {event.type for event in sandbox.events.values()}
        sandbox.refunds = {refund.id: refund for refund in refunds}
        sandbox.balance_transactions = {transaction.id: transaction for transaction in balance_transactions}
        for index, objects in (
            (sandbox.intent_index, sandbox.intents),
            (sandbox.event_index, sandbox.events),
            (sandbox.refund_index, sandbox.refunds),
            (sandbox.balance_index, sandbox.balance_transactions),
        ):
            index.add_many_unsorted([(thing.created, thing.id) for thing in objects.values()])
        sandbox._replay_closed_attempts()
        for intent in sandbox.intents.values():
            sandbox._track_deadline(intent)
        for refund in sandbox.refunds.values():
            sandbox._track_refund(refund)
        return sandbox

    # ---- reads -------------------------------------------------------------------------------------------
    def intent(self, intent_id: str, param: str = "intent") -> PaymentIntent:
        found = self.intents.get(intent_id)
        if found is None:
            raise resource_missing("payment_intent", intent_id, param)
        return found

    def charge(self, charge_id: str, param: str = "id") -> Charge:
        found = self.charges.get(charge_id)
        if found is None:
            raise resource_missing("charge", charge_id, param)
        return found

    def intent_for_token(self, token: str) -> PaymentIntent | None:
        intent_id = self.tokens.get(token)
        return self.intents.get(intent_id) if intent_id else None

    def closed_attempt(self, token: str) -> ClosedAttempt | None:
        return self.closed_attempts.get(token)

    # ---- transitions -------------------------------------------------------------------------------------
    def create_intent(self, draft: IntentDraft, at: int, request: RequestRef | None) -> PaymentIntent:
        if ALMA in draft.payment_method_types and draft.currency != ALMA_CURRENCY:
            raise invalid_request(
                f"The currency provided ({draft.currency}) is invalid for one or more payment method types on "
                f"this PaymentIntent: alma only supports {ALMA_CURRENCY}.",
                code="payment_intent_invalid_currency",
                param="currency",
            )
        if draft.amount < STRIPE_MINIMUM_EUR_CENTS:
            raise _amount_error("amount_too_small", "at least", STRIPE_MINIMUM_EUR_CENTS, draft.currency)
        if draft.amount > STRIPE_MAXIMUM_AMOUNT:
            raise _amount_error("amount_too_large", "no more than", STRIPE_MAXIMUM_AMOUNT, draft.currency)
        if draft.confirm:
            if draft.payment_method_type is None:
                raise _missing_payment_method()
            self._check_confirmable(
                draft.amount, draft.payment_method_types, draft.payment_method_type, draft.return_url
            )
        intent_id = self.ids.new("pi_")
        payment_method = (
            self._new_payment_method(draft.payment_method_type, draft.billing, at)
            if draft.payment_method_type
            else None
        )
        intent = PaymentIntent(
            id=intent_id,
            created=at,
            amount=draft.amount,
            currency=draft.currency,
            client_secret=f"{intent_id}_secret_{self.ids.new('', 25)}",
            status="requires_confirmation" if payment_method else "requires_payment_method",
            capture_method=draft.capture_method,
            payment_method_types=draft.payment_method_types,
            description=draft.description,
            metadata=dict(draft.metadata),
            automatic_payment_methods=draft.automatic_payment_methods,
            alma_capture_method=draft.alma_capture_method,
            payment_method=payment_method.id if payment_method else None,
        )
        self._index(self.intent_index, at, intent_id)
        self._save(intent, at, request, "payment_intent.created")
        if draft.confirm:
            intent = self.confirm(intent_id, Attempt(None, draft.return_url, billing=draft.billing), at, request)
        return intent

    def update_intent(
        self, intent_id: str, description: str | None, metadata: Mapping[str, str] | None
    ) -> PaymentIntent:
        intent = self.intent(intent_id)
        updated = replace(
            intent,
            description=intent.description if description is None else (description or None),
            metadata=intent.metadata if metadata is None else dict(metadata),
        )
        self.intents[intent_id] = updated  # no event: Stripe has no payment_intent.updated
        return updated

    def confirm(self, intent_id: str, attempt: Attempt, at: int, request: RequestRef | None) -> PaymentIntent:
        intent = self._guarded(intent_id, "confirm")
        new_method_type = attempt.payment_method_type
        if new_method_type is None and intent.payment_method is None:
            raise _missing_payment_method()
        return_url = attempt.return_url
        self._check_confirmable(intent.amount, intent.payment_method_types, new_method_type or ALMA, return_url)
        assert return_url is not None  # checked above; narrows the type
        payment_method_id = (
            self._new_payment_method(new_method_type, attempt.billing, at).id
            if new_method_type
            else intent.payment_method
        )
        return self._transition(
            intent,
            "payment_intent.requires_action",
            at,
            request,
            status="requires_action",
            payment_method=payment_method_id,
            capture_method=attempt.capture_method or intent.capture_method,
            alma_capture_method=attempt.alma_capture_method or intent.alma_capture_method,
            redirect=Redirect(token=self.ids.new("", 32), return_url=return_url, deadline=at + self.rules.auth_window),
            last_payment_error=None,
        )

    def authorize(self, intent_id: str, installments: int, at: int) -> PaymentIntent:
        """The customer approved on Alma's page."""
        intent = self._guarded(intent_id, "authorize")
        assert intent.payment_method is not None  # requires_action always carries one
        manual = intent.captures_manually
        charge_id = self.ids.new("ch_")
        charge = Charge(
            id=charge_id,
            created=at,
            amount=intent.amount,
            currency=intent.currency,
            payment_intent=intent.id,
            payment_method=intent.payment_method,
            installments=installments,
            transaction_id=self.ids.new("payment_", 34),
            description=intent.description,
            metadata=intent.metadata,
            captured=not manual,
            amount_captured=0 if manual else intent.amount,
            billing=self.payment_methods[intent.payment_method].billing,
            balance_transaction=None if manual else self._charge_transaction(charge_id, intent.amount, at),
        )
        self._save_charge(charge, at, None, "charge.succeeded")
        if manual:  # held until the merchant captures
            event_type = "payment_intent.amount_capturable_updated"
            outcome: dict[str, Any] = {"status": "requires_capture", "amount_capturable": intent.amount}
        else:
            event_type = "payment_intent.succeeded"
            outcome = {"status": "succeeded", "amount_received": intent.amount}
        return self._transition(intent, event_type, at, None, latest_charge=charge.id, **outcome)

    def fail_attempt(self, intent_id: str, code: str, at: int) -> PaymentIntent:
        """Declined on Alma's page, or left there past the auth window: the PaymentMethod is detached and the
        intent waits for a new one (it is NOT canceled)."""
        intent = self._guarded(intent_id, "fail_attempt")
        assert intent.payment_method is not None
        message = (
            "The customer's Alma payment attempt expired before it was completed."
            if code == EXPIRED_CODE
            else "The customer declined or failed the Alma payment."
        )
        return self._transition(
            intent,
            "payment_intent.payment_failed",
            at,
            None,
            status="requires_payment_method",
            payment_method=None,
            last_payment_error=PaymentError(code=code, message=message, payment_method=intent.payment_method),
        )

    def capture(
        self, intent_id: str, amount_to_capture: int | None, at: int, request: RequestRef | None
    ) -> PaymentIntent:
        intent = self._guarded(intent_id, "capture")
        amount = intent.amount_capturable if amount_to_capture is None else amount_to_capture
        if amount > intent.amount_capturable or amount < 1:
            raise parameter_invalid(
                "amount_to_capture",
                f"The amount to capture must be between 1 and the amount capturable ({intent.amount_capturable}).",
                "amount_too_large" if amount > intent.amount_capturable else "amount_too_small",
            )
        assert intent.latest_charge is not None
        charge = self.charges[intent.latest_charge]
        captured = replace(
            charge,
            captured=True,
            amount_captured=amount,
            amount_refunded=charge.amount - amount,
            balance_transaction=self._charge_transaction(charge.id, amount, at),
        )
        self._save_charge(captured, at, request, "charge.captured")
        return self._transition(
            intent,
            "payment_intent.succeeded",
            at,
            request,
            status="succeeded",
            amount_received=amount,
            amount_capturable=0,
        )

    def cancel(self, intent_id: str, reason: str | None, at: int, request: RequestRef | None) -> PaymentIntent:
        intent = self._guarded(intent_id, "cancel")
        if intent.status == "requires_capture" and intent.latest_charge:
            # Stripe refunds what was held on the uncaptured charge: `charge.refunded` when the merchant
            # cancels, `charge.expired` when the capture window lapsed.
            charge = self.charges[intent.latest_charge]
            released = replace(charge, amount_refunded=charge.amount_refunded + intent.amount_capturable)
            lapsed = reason == AUTOMATIC_CANCELLATION
            self._save_charge(released, at, request, "charge.expired" if lapsed else "charge.refunded")
        return self._transition(
            intent,
            "payment_intent.canceled",
            at,
            request,
            status="canceled",
            canceled_at=at,
            cancellation_reason=reason,
            amount_capturable=0,
        )

    def refund(self, draft: RefundDraft, at: int, request: RequestRef | None) -> Refund:
        """A refund of a captured Alma charge: pending now, settled by the clock `rules.refund_delay` later.
        The charge counts it as refunded at once (as Stripe's does) and gives it back if it fails."""
        if draft.payment_intent is not None:
            intent = self.intent(draft.payment_intent, "payment_intent")
            if intent.status != "succeeded" or intent.latest_charge is None:
                raise invalid_request(
                    f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self.charges[intent.latest_charge]
        else:
            assert draft.charge is not None  # the handler requires one of the two
            charge = self.charge(draft.charge, "charge")
            if not charge.captured:
                raise invalid_request(
                    f"Charge {charge.id} has not been captured; cancel its PaymentIntent to release it.",
                    param="charge",
                )
        unrefunded = charge.amount - charge.amount_refunded
        if unrefunded <= 0:
            raise invalid_request(
                f"Charge {charge.id} has already been refunded.", code="charge_already_refunded", param="charge"
            )
        if at > charge.created + REFUND_WINDOW_SECONDS:
            raise invalid_request(
                f"Charge {charge.id} was paid more than 180 days ago: Alma no longer accepts refunds for it.",
                code="charge_not_refundable",
                param="charge",
            )
        amount = unrefunded if draft.amount is None else draft.amount
        if amount < 1:
            raise parameter_invalid("amount", "This value must be greater than or equal to 1.", "amount_too_small")
        if amount > unrefunded:
            raise parameter_invalid(
                "amount",
                f"Refund amount ({euros(amount)}) is greater than unrefunded amount on charge ({euros(unrefunded)})",
                "amount_too_large",
            )
        refund_id = self.ids.new("re_")
        refund = Refund(
            id=refund_id,
            created=at,
            amount=amount,
            currency=charge.currency,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            reason=draft.reason,
            metadata=dict(draft.metadata),
            balance_transaction=self._new_transaction(refund_id, "refund", -amount, 0, at).id,
        )
        self._index(self.refund_index, at, refund.id)
        self._save_refund(refund, at, request, "refund.created")
        self._save_charge(
            replace(charge, amount_refunded=charge.amount_refunded + amount), at, request, "charge.refunded"
        )
        self._track_refund(refund)
        return refund

    def settle_refund(self, refund_id: str, at: int) -> Refund:
        """The clock's doing: Alma answered. `metadata[sandbox_refund]=fail` makes the answer a failure."""
        refund = self.refunds[refund_id]
        key, value = REFUND_FAILURE_FLAG
        if refund.metadata.get(key) != value:
            self._guard_refund(refund, "refund_succeed")
            return self._refund_transition(refund, at, ("refund.updated", "charge.refund.updated"), status="succeeded")
        self._guard_refund(refund, "refund_fail")
        giveback = self._new_transaction(refund.id, "refund_failure", refund.amount, 0, at)
        failed = self._refund_transition(
            refund,
            at,
            ("refund.failed", "refund.updated", "charge.refund.updated"),
            status="failed",
            failure_reason="declined",
            failure_balance_transaction=giveback.id,
        )
        charge = self.charges[refund.charge]
        self.charges[charge.id] = replace(charge, amount_refunded=charge.amount_refunded - refund.amount)
        return failed

    # ---- the clock's doing -------------------------------------------------------------------------------
    def sweep(self, now: int) -> int:
        """Apply every deadline that has passed, each at its own instant, oldest first. Returns how many."""
        applied = 0
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, kind, intent_id, marker = heapq.heappop(self.deadlines)
            if kind == "refund_settles":
                if self.refunds[marker].status == "pending":
                    self.settle_refund(marker, deadline)
                    applied += 1
                continue
            intent = self.intents.get(intent_id)
            if intent is None:
                continue
            attempt_open = intent.redirect is not None and intent.redirect.token == marker
            if kind == "auth_expiry" and intent.status == "requires_action" and attempt_open:
                self.fail_attempt(intent_id, EXPIRED_CODE, deadline)
                applied += 1
            elif kind == "capture_expiry" and intent.status == "requires_capture" and intent.latest_charge == marker:
                self.cancel(intent_id, AUTOMATIC_CANCELLATION, deadline, None)
                applied += 1
        return applied

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Seeding: index entries arrive out of time order; collect them and sort once at the end."""
        self._bulk = []
        try:
            yield
        finally:
            pending, self._bulk = self._bulk, None
            for index in (self.intent_index, self.event_index, self.refund_index, self.balance_index):
                index.add_many_unsorted(
                    [(created, object_id) for target, created, object_id in pending if target is index]
                )

    # ---- internals ---------------------------------------------------------------------------------------
    def _guarded(self, intent_id: str, transition_name: str) -> PaymentIntent:
        intent = self.intent(intent_id)
        transition = TRANSITIONS[transition_name]
        if intent.status not in transition.sources:
            raise unexpected_state(
                f"You cannot {transition.verb} this PaymentIntent because it has a status of {intent.status}. "
                f"Only a PaymentIntent with one of the following statuses may be {transition.participle}: "
                f"{', '.join(transition.sources)}."
            )
        return intent

    def _check_confirmable(
        self, amount: int, allowed_types: tuple[str, ...], payment_method_type: str | None, return_url: str | None
    ) -> None:
        if payment_method_type != ALMA:
            raise parameter_invalid(
                "payment_method_data[type]",
                f"The Alma sandbox confirms only payment_method_data[type]=alma, not {payment_method_type!r}.",
            )
        if ALMA not in allowed_types:
            raise invalid_request(
                "The payment method type provided: alma is invalid. This PaymentIntent accepts: "
                f"{', '.join(allowed_types)}.",
                code="payment_intent_incompatible_payment_method",
                param="payment_method_data[type]",
            )
        if amount < self.rules.min_amount:
            raise _amount_error("amount_too_small", "at least", self.rules.min_amount, ALMA_CURRENCY, ALMA_SCOPE)
        if amount > self.rules.max_amount:
            raise _amount_error("amount_too_large", "no more than", self.rules.max_amount, ALMA_CURRENCY, ALMA_SCOPE)
        if not return_url:
            raise invalid_request(
                "A `return_url` must be specified because this PaymentIntent is confirmed with alma, which "
                "redirects the customer to complete the payment.",
                code="payment_intent_redirect_confirmation_without_return_url",
                param="return_url",
            )

    def _new_payment_method(self, payment_method_type: str, billing: Customer, at: int) -> PaymentMethod:
        if payment_method_type != ALMA:
            raise parameter_invalid(
                "payment_method_data[type]",
                f"The Alma sandbox creates only alma PaymentMethods, not {payment_method_type!r}.",
            )
        payment_method = PaymentMethod(id=self.ids.new("pm_"), created=at, billing=billing)
        self.payment_methods[payment_method.id] = payment_method
        return payment_method

    def _transition(
        self, intent: PaymentIntent, event_type: str, at: int, request: RequestRef | None, **changes: Any
    ) -> PaymentIntent:
        """Every status change: the open Alma attempt (if any) closes unless `changes` open a new one, the new
        version is saved with its event, and its deadline (if it now waits on one) is scheduled."""
        changed = self._save(replace(intent, **{"redirect": None, **changes}), at, request, event_type)
        if intent.redirect is not None:
            self._close_attempt(intent.redirect, event_type, changed)
        self._track_deadline(changed)
        return changed

    def _close_attempt(self, redirect: Redirect, event_type: str, after: PaymentIntent) -> None:
        self.tokens.pop(redirect.token, None)
        outcome = attempt_outcome(event_type, after)
        self.closed_attempts[redirect.token] = ClosedAttempt(after.id, redirect.return_url, outcome)

    def _replay_closed_attempts(self) -> None:
        """After loading: which hosted pages were answered, and how, read from the intents' history."""
        open_redirects: dict[str, Redirect] = {}
        for event_id in self.event_index.oldest_first():
            event = self.events[event_id]
            version = event.object
            if not isinstance(version, PaymentIntent):
                continue
            previous = open_redirects.pop(version.id, None)
            if previous is not None and (version.redirect is None or version.redirect.token != previous.token):
                self.closed_attempts[previous.token] = ClosedAttempt(
                    version.id, previous.return_url, attempt_outcome(event.type, version)
                )
            if version.redirect is not None:
                open_redirects[version.id] = version.redirect

    def _track_deadline(self, intent: PaymentIntent) -> None:
        """What the clock will do to an intent waiting on the customer (auth window) or on a capture (7 days)."""
        if intent.redirect is not None:
            self.tokens[intent.redirect.token] = intent.id
            self._schedule(intent.redirect.deadline, "auth_expiry", intent.id, intent.redirect.token)
        elif intent.status == "requires_capture" and intent.latest_charge is not None:
            authorized_at = self.charges[intent.latest_charge].created
            self._schedule(authorized_at + CAPTURE_WINDOW_SECONDS, "capture_expiry", intent.id, intent.latest_charge)

    def _track_refund(self, refund: Refund) -> None:
        if refund.status == "pending":
            self._schedule(refund.created + self.rules.refund_delay, "refund_settles", refund.payment_intent, refund.id)

    def _guard_refund(self, refund: Refund, transition_name: str) -> None:
        transition = TRANSITIONS[transition_name]
        if refund.status not in transition.sources:
            raise unexpected_state(
                f"You cannot {transition.verb} this {transition.noun} because it has a status of {refund.status}."
            )

    def _refund_transition(self, refund: Refund, at: int, event_types: tuple[str, ...], **changes: Any) -> Refund:
        changed = replace(refund, **changes)
        for event_type in event_types:
            self._save_refund(changed, at, None, event_type)
        return changed

    def _charge_transaction(self, charge_id: str, captured: int, at: int) -> str:
        """The captured amount arriving, less the Alma fee."""
        return self._new_transaction(charge_id, "charge", captured, self.rules.fee(captured), at).id

    def _new_transaction(self, source: str, kind: str, amount: int, fee: int, at: int) -> BalanceTransaction:
        available_on = (at // DAY_SECONDS + AVAILABLE_AFTER_DAYS) * DAY_SECONDS
        transaction = BalanceTransaction(
            id=self.ids.new("txn_"),
            created=at,
            amount=amount,
            fee=fee,
            currency=ALMA_CURRENCY,
            source=source,
            type=kind,
            available_on=available_on,
        )
        self.balance_transactions[transaction.id] = transaction
        self._index(self.balance_index, at, transaction.id)
        return transaction

    def _schedule(self, deadline: int, kind: DeadlineKind, intent_id: str, marker: str) -> None:
        self._deadline_sequence += 1
        heapq.heappush(self.deadlines, (deadline, self._deadline_sequence, kind, intent_id, marker))

    def _save(self, intent: PaymentIntent, at: int, request: RequestRef | None, event_type: str) -> PaymentIntent:
        self.intents[intent.id] = intent
        self._emit(event_type, intent, at, request)
        return intent

    def _save_charge(self, charge: Charge, at: int, request: RequestRef | None, event_type: str) -> None:
        self.charges[charge.id] = charge
        self._emit(event_type, charge, at, request)

    def _save_refund(self, refund: Refund, at: int, request: RequestRef | None, event_type: str) -> None:
        self.refunds[refund.id] = refund
        self._emit(event_type, refund, at, request)

    def _emit(self, event_type: str, snapshot: EventObject, at: int, request: RequestRef | None) -> None:
        event = Event(id=self.ids.new("evt_"), created=at, type=event_type, object=snapshot, request=request)
        self.events[event.id] = event
        self.event_types.add(event_type)
        self._index(self.event_index, at, event.id)

    def _index(self, index: CreatedIndex, created: int, object_id: str) -> None:
        if self._bulk is not None:
            self._bulk.append((index, created, object_id))
        else:
            index.add(created, object_id)


def euros(cents: int, *, french: bool = False) -> str:
    """EUR text as the sandbox writes it: "€1,234.56" in Stripe's messages, "1 234,56 €" on Alma's French page."""
    whole, rest = divmod(cents, 100)
    if french:
        return f"{whole:,}".replace(",", "\u202f") + f",{rest:02d}\u00a0€"
    return f"€{whole:,}.{rest:02d}"


def _amount_error(code: str, bound_word: str, cents: int, currency: str, scope: str = "payments") -> StripeApiError:
    return parameter_invalid("amount", f"Amount must be {bound_word} {euros(cents)} {currency} for {scope}.", code)


def _missing_payment_method() -> StripeApiError:
    return unexpected_state(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Confirm it with "
        "payment_method_data[type]=alma."
    )
