"""What an Alma PaymentIntent is, and the facts derived from it. Pure: no I/O, no clock reads."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping

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
EXPIRED_CODE = "payment_intent_payment_attempt_expired"
DECLINED_CODE = "payment_intent_payment_attempt_failed"

FailureKind = Literal["expired", "declined"]


@dataclass(frozen=True)
class PaymentError:
    code: str | None
    message: str | None
    type: str | None
    payment_method_type: str | None  # from last_payment_error.payment_method.type


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
    last_error: PaymentError | None = None
    latest_charge_id: str | None = None
    charge_method_type: str | None = None  # latest_charge.payment_method_details.type
    installments: int | None = None
    alma_transaction_id: str | None = None
    authorized_at: int | None = None  # latest charge's created
    redirect_url: str | None = None  # next_action.redirect_to_url.url: an opaque token, not a secret
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    livemode: bool = False
    # Not on Stripe's object: learned from events by the sync.
    sent_to_alma_at: int | None = None  # the payment_intent.requires_action event (or the expanded method's created)
    updated_at: int | None = None  # created of the event (or listing) that gave this state
    # Kept for the detail view's "raw" section; never contains client_secret (see from_stripe).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def metadata_dict(self) -> dict[str, str]:
        return dict(self.metadata)

    @classmethod
    def from_stripe(cls, payload: Mapping[str, Any]) -> "AlmaIntent":
        """Build from a PaymentIntent as Stripe serialises it (dict), latest_charge/payment_method
        either ids or expanded objects."""
        pm = payload.get("payment_method")
        pm_id, pm_type = (pm.get("id"), pm.get("type")) if isinstance(pm, Mapping) else (pm, None)
        # The method is created by the confirmation that sends the customer to Alma (payment_method_data),
        # so an expanded one dates the wait even when its requires_action event is out of reach.
        sent_at = pm.get("created") if isinstance(pm, Mapping) and payload["status"] == "requires_action" else None
        charge = payload.get("latest_charge")
        charge_fields: dict[str, Any] = {}
        if isinstance(charge, Mapping):
            details = charge.get("payment_method_details") or {}
            alma = details.get("alma") or {}
            charge_fields = {
                "latest_charge_id": charge.get("id"),
                "charge_method_type": details.get("type"),
                "installments": (alma.get("installments") or {}).get("count"),
                "alma_transaction_id": alma.get("transaction_id"),
                "authorized_at": charge.get("created"),
            }
        else:
            charge_fields = {"latest_charge_id": charge}
        err = payload.get("last_payment_error")
        last_error = None
        if isinstance(err, Mapping):
            err_pm = err.get("payment_method")
            last_error = PaymentError(
                code=err.get("code"),
                message=err.get("message"),
                type=err.get("type"),
                payment_method_type=err_pm.get("type") if isinstance(err_pm, Mapping) else None,
            )
        next_action = payload.get("next_action") or {}
        redirect = (next_action.get("redirect_to_url") or {}).get("url")
        raw = {k: v for k, v in payload.items() if k != "client_secret"}
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

    def with_charge(self, charge: Mapping[str, Any]) -> "AlmaIntent":
        """The Charge carries installments; charge events bring it separately from the intent."""
        expanded = AlmaIntent.from_stripe({**self.raw, "id": self.id, "latest_charge": charge})
        return replace(
            self,
            latest_charge_id=expanded.latest_charge_id,
            charge_method_type=expanded.charge_method_type,
            installments=expanded.installments,
            alma_transaction_id=expanded.alma_transaction_id,
            authorized_at=expanded.authorized_at,
        )


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


def expires_at(intent: AlmaIntent, auth_window_seconds: int) -> int | None:
    """When an intent waiting on the customer returns to requires_payment_method."""
    if intent.status != "requires_action" or intent.sent_to_alma_at is None:
        return None
    return intent.sent_to_alma_at + auth_window_seconds


def seconds_left(intent: AlmaIntent, now: int, auth_window_seconds: int) -> int | None:
    deadline = expires_at(intent, auth_window_seconds)
    return None if deadline is None else max(0, deadline - now)


def failure_kind(intent: AlmaIntent, auth_window_seconds: int) -> FailureKind | None:
    """Expired (the window ran out) versus declined (the customer or Alma refused)."""
    if intent.status != "requires_payment_method" or intent.last_error is None:
        return None
    code = intent.last_error.code
    if code == EXPIRED_CODE:
        return "expired"
    if code == DECLINED_CODE:
        if (
            intent.sent_to_alma_at is not None
            and intent.updated_at is not None
            and intent.updated_at - intent.sent_to_alma_at >= auth_window_seconds
        ):
            return "expired"  # no customer action before expires_at, whatever the code says
        return "declined"
    return "declined"


def waited_seconds(intent: AlmaIntent) -> int | None:
    """How long the customer had the Alma page before the intent left requires_action."""
    if intent.sent_to_alma_at is None or intent.updated_at is None:
        return None
    return max(0, intent.updated_at - intent.sent_to_alma_at)


def capture_deadline(intent: AlmaIntent) -> int | None:
    """Uncaptured manual-capture intents are canceled 7 days after authorisation."""
    if intent.status != "requires_capture":
        return None
    start = intent.authorized_at or intent.updated_at or intent.created
    return start + CAPTURE_WINDOW_SECONDS
