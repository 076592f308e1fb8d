"""The sandbox's in-memory Stripe account: immutable object versions and the Alma lifecycle.

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

CAPTURE_WINDOW_SECONDS = 7 * 24 * 3600
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


@dataclass(frozen=True, slots=True)
class RequestRef:
    """The API request that caused an event (Event.request); None for the customer's or the clock's doing."""

    id: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    id: str
    created: int
    type: str = ALMA


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


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    created: int
    type: str
    object: PaymentIntent | Charge
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


@dataclass(frozen=True)
class Attempt:
    """What a confirm brings (POST .../confirm, or create with confirm=true)."""

    payment_method_type: str | None  # payment_method_data[type]; None: reuse the attached method
    return_url: str | None
    capture_method: str | None = None  # None: keep the intent's
    alma_capture_method: str | None = None


@dataclass(frozen=True)
class Transition:
    # As Stripe words its state errors: "You cannot {verb} this PaymentIntent ... may be {participle}: ..."
    verb: str
    participle: str
    sources: tuple[str, ...]


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
}

DeadlineKind = Literal["auth_expiry", "capture_expiry"]


class IdFactory:
    """Stripe-looking ids: prefix + 24 alphanumerics, from the operating system's CSPRNG (`secrets`): ids,
    client secrets and hosted-page tokens must not be predictable from ones already seen, as a Mersenne
    Twister's are. Bytes are drawn a buffer at a time (seeding 100k intents mints ~1M ids) and mapped onto
    the alphabet with one `translate`; the slight bias (256 is not a multiple of 62) leaves ~5.95 bits of
    entropy per character, ~143 bits per 24-character id."""

    _BYTE_TO_CHAR = ((string.ascii_letters + string.digits).encode() * 5)[:256]
    _BUFFER_BYTES = 64 * 1024

    def __init__(self) -> None:
        self._buffer = b""
        self._position = 0

    def new(self, prefix: str, length: int = 24) -> str:
        if self._position + length > len(self._buffer):
            self._buffer = secrets.token_bytes(max(self._BUFFER_BYTES, length))
            self._position = 0
        chunk = self._buffer[self._position : self._position + length]
        self._position += length
        return prefix + chunk.translate(self._BYTE_TO_CHAR).decode()


@dataclass
class Sandbox:
    rules: AlmaRules
    ids: IdFactory = field(default_factory=IdFactory)
    intents: dict[str, PaymentIntent] = field(default_factory=dict)
    payment_methods: dict[str, PaymentMethod] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    intent_index: CreatedIndex = field(default_factory=CreatedIndex)
    event_index: CreatedIndex = field(default_factory=CreatedIndex)
    tokens: dict[str, str] = field(default_factory=dict)  # redirect token -> intent id
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
    ) -> Sandbox:
        """An account read back from its facts: `intents` in creation order, `events` in time order. What is
        derived from them (indexes, hosted-page tokens, pending deadlines) is rebuilt, not stored."""
        sandbox = cls(rules)
        sandbox.payment_methods = {payment_method.id: payment_method for payment_method in payment_methods}
        sandbox.charges = {charge.id: charge for charge in charges}
        sandbox.intents = {intent.id: intent for intent in intents}
        sandbox.events = {event.id: event for event in events}
        sandbox.intent_index.add_many_unsorted([(intent.created, intent.id) for intent in sandbox.intents.values()])
        sandbox.event_index.add_many_unsorted([(event.created, event.id) for event in sandbox.events.values()])
        for intent in sandbox.intents.values():
            sandbox._track_deadline(intent)
        return sandbox

    # ---- reads -------------------------------------------------------------------------------------------
    def intent(self, intent_id: str, param: str = "intent") -> PaymentIntent:
        found = self.intents.get(intent_id)
        if found is None:
            raise resource_missing("payment_intent", intent_id, param)
        return found

    def intent_for_token(self, token: str) -> PaymentIntent | None:
        intent_id = self.tokens.get(token)
        return self.intents.get(intent_id) if intent_id else None

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
        payment_method = self._new_payment_method(draft.payment_method_type, at) if draft.payment_method_type else None
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
            intent = self.confirm(intent_id, Attempt(None, draft.return_url), at, request)
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
            self._new_payment_method(new_method_type, at).id if new_method_type else intent.payment_method
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
        charge = Charge(
            id=self.ids.new("ch_"),
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
        captured = replace(charge, captured=True, amount_captured=amount, amount_refunded=charge.amount - amount)
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

    # ---- the clock's doing -------------------------------------------------------------------------------
    def sweep(self, now: int) -> int:
        """Apply every deadline that has passed, each at its own instant, oldest first. Returns how many."""
        applied = 0
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, kind, intent_id, marker = heapq.heappop(self.deadlines)
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
            for index in (self.intent_index, self.event_index):
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

    def _new_payment_method(self, payment_method_type: str, at: int) -> PaymentMethod:
        if payment_method_type != ALMA:
            raise parameter_invalid(
                "payment_method_data[type]",
                f"The Alma sandbox creates only alma PaymentMethods, not {payment_method_type!r}.",
            )
        payment_method = PaymentMethod(id=self.ids.new("pm_"), created=at)
        self.payment_methods[payment_method.id] = payment_method
        return payment_method

    def _transition(
        self, intent: PaymentIntent, event_type: str, at: int, request: RequestRef | None, **changes: Any
    ) -> PaymentIntent:
        """Every status change: the open Alma attempt (if any) closes unless `changes` open a new one, the new
        version is saved with its event, and its deadline (if it now waits on one) is scheduled."""
        if intent.redirect is not None:
            self.tokens.pop(intent.redirect.token, None)
        changed = self._save(replace(intent, **{"redirect": None, **changes}), at, request, event_type)
        self._track_deadline(changed)
        return changed

    def _track_deadline(self, intent: PaymentIntent) -> None:
        """What the clock will do to an intent waiting on the customer (auth window) or on a capture (7 days)."""
        if intent.redirect is not None:
            self.tokens[intent.redirect.token] = intent.id
            self._schedule(intent.redirect.deadline, "auth_expiry", intent.id, intent.redirect.token)
        elif intent.status == "requires_capture" and intent.latest_charge is not None:
            authorized_at = self.charges[intent.latest_charge].created
            self._schedule(authorized_at + CAPTURE_WINDOW_SECONDS, "capture_expiry", intent.id, intent.latest_charge)

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

    def _emit(self, event_type: str, snapshot: PaymentIntent | Charge, at: int, request: RequestRef | None) -> None:
        event = Event(id=self.ids.new("evt_"), created=at, type=event_type, object=snapshot, request=request)
        self.events[event.id] = event
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
