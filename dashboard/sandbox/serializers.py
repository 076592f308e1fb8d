"""Model versions -> Stripe's JSON. Each object carries exactly the fields stripe-python 16.1.0 declares for it
(null where the sandbox has no value), nested objects we fill included; tagged unions carry only the variant
their `type` names, as Stripe sends them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import doc_url, invalid_request
from .model import (
    ALMA,
    BalanceTransaction,
    Charge,
    Customer,
    Event,
    PaymentError,
    PaymentIntent,
    PaymentMethod,
    Refund,
    Sandbox,
    euros,
)

API_VERSION = "2026-10-28.endive"

# Field names as stripe-python 16.1.0 declares them (stripe.PaymentIntent.__annotations__ and friends).
PAYMENT_INTENT_FIELDS = [
    "id",
    "object",
    "allowed_payment_method_types",
    "amount",
    "amount_capturable",
    "amount_details",
    "amount_received",
    "application",
    "application_fee_amount",
    "automatic_payment_methods",
    "canceled_at",
    "cancellation_reason",
    "capture_method",
    "client_secret",
    "confirmation_method",
    "created",
    "currency",
    "customer",
    "customer_account",
    "description",
    "excluded_payment_method_types",
    "hooks",
    "last_payment_error",
    "latest_charge",
    "livemode",
    "managed_payments",
    "metadata",
    "next_action",
    "on_behalf_of",
    "payment_details",
    "payment_method",
    "payment_method_configuration_details",
    "payment_method_options",
    "payment_method_types",
    "payment_record",
    "presentment_details",
    "processing",
    "receipt_email",
    "review",
    "setup_future_usage",
    "shipping",
    "source",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "status",
    "transfer_data",
    "transfer_group",
]
CHARGE_FIELDS = [
    "id",
    "object",
    "amount",
    "amount_captured",
    "amount_refunded",
    "application",
    "application_fee",
    "application_fee_amount",
    "authorization_code",
    "balance_transaction",
    "billing_details",
    "calculated_statement_descriptor",
    "captured",
    "created",
    "currency",
    "customer",
    "description",
    "disputed",
    "failure_balance_transaction",
    "failure_code",
    "failure_message",
    "fraud_details",
    "level3",
    "livemode",
    "metadata",
    "on_behalf_of",
    "outcome",
    "paid",
    "payment_intent",
    "payment_method",
    "payment_method_details",
    "presentment_details",
    "radar_options",
    "receipt_email",
    "receipt_number",
    "receipt_url",
    "refunded",
    "refunds",
    "review",
    "shipping",
    "source",
    "source_transfer",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "status",
    "transfer",
    "transfer_data",
    "transfer_group",
]
# Stripe sends one key per payment method type only for the type in use (PaymentMethod, next_action,
# payment_method_details are tagged unions keyed by `type`; payment_method_options maps enabled types).
PAYMENT_METHOD_FIELDS = [
    "id",
    "object",
    "allow_redisplay",
    "alma",
    "billing_details",
    "created",
    "customer",
    "customer_account",
    "livemode",
    "metadata",
    "radar_options",
    "type",
]
LAST_PAYMENT_ERROR_FIELDS = [
    "advice_code",
    "charge",
    "code",
    "decline_code",
    "doc_url",
    "message",
    "network_advice_code",
    "network_decline_code",
    "param",
    "payment_intent",
    "payment_method",
    "payment_method_type",
    "request_log_url",
    "setup_intent",
    "source",
    "type",
]
OUTCOME_FIELDS = [
    "advice_code",
    "network_advice_code",
    "network_decline_code",
    "network_status",
    "reason",
    "risk_level",
    "risk_score",
    "rule",
    "seller_message",
    "type",
]
ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
REFUND_FIELDS = [
    "id",
    "object",
    "amount",
    "balance_transaction",
    "charge",
    "created",
    "currency",
    "customer",
    "customer_account",
    "description",
    "destination_details",
    "failure_balance_transaction",
    "failure_reason",
    "instructions_email",
    "metadata",
    "next_action",
    "payment_intent",
    "payment_method",
    "pending_reason",
    "presentment_details",
    "reason",
    "receipt_number",
    "source_transfer_reversal",
    "status",
    "transfer_reversal",
]
BALANCE_TRANSACTION_FIELDS = [
    "id",
    "object",
    "amount",
    "available_on",
    "balance_type",
    "created",
    "currency",
    "description",
    "exchange_rate",
    "fee",
    "fee_details",
    "net",
    "reporting_category",
    "source",
    "status",
    "type",
]

# What every sandbox PaymentIntent has in common: the declared fields the sandbox never fills, and constants.
_INTENT_VARYING = frozenset(
    [
        "id",
        "amount",
        "amount_capturable",
        "amount_received",
        "automatic_payment_methods",
        "canceled_at",
        "cancellation_reason",
        "capture_method",
        "client_secret",
        "created",
        "currency",
        "description",
        "last_payment_error",
        "latest_charge",
        "metadata",
        "next_action",
        "payment_method",
        "payment_method_options",
        "payment_method_types",
        "status",
    ]
)
_INTENT_CONSTANTS: dict[str, Any] = {
    **{name: None for name in PAYMENT_INTENT_FIELDS if name not in _INTENT_VARYING},
    "object": "payment_intent",
    "confirmation_method": "automatic",
    "livemode": False,
}
_INTENT_CONSTANTS_JSON = json.dumps(_INTENT_CONSTANTS, separators=(",", ":")).replace("{", ",", 1).encode()

# What `expand[]` may name on each kind of object, and the kind it then finds there. Paths nest
# (`data.latest_charge.balance_transaction`) up to MAX_EXPAND_DEPTH levels, as Stripe's do.
EXPANDABLE: dict[str, dict[str, str]] = {
    "payment_intent": {"payment_method": "payment_method", "latest_charge": "charge"},
    "charge": {"payment_intent": "payment_intent", "payment_method": "payment_method", "balance_transaction": "txn"},
    "refund": {
        "balance_transaction": "txn",
        "charge": "charge",
        "payment_intent": "payment_intent",
        "failure_balance_transaction": "txn",
    },
    "txn": {"source": "source"},
    "source": {},  # a charge or a refund: nothing beneath it is expandable from here
    "payment_method": {},
    "event": {},
}
MAX_EXPAND_DEPTH = 4


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _filled(fields: Iterable[str], **values: Any) -> dict[str, Any]:
    shaped = dict.fromkeys(fields)
    shaped.update(values)
    return shaped


def _billing_details(customer: Customer) -> dict[str, Any]:
    return {
        "address": dict.fromkeys(ADDRESS_FIELDS),
        "email": customer.email,
        "name": customer.name,
        "phone": None,
        "tax_id": None,
    }


def check_expand(paths: frozenset[str], kind: str, prefix: str = "") -> frozenset[str]:
    """Validate `expand[]` for an object of `kind` and strip a list's `data.` prefix."""
    inner_paths = set()
    for path in paths:
        inner = path.removeprefix(prefix) if path.startswith(prefix) else ""
        segments = inner.split(".")
        reached: str | None = kind
        for segment in segments:
            reached = EXPANDABLE[reached].get(segment) if reached is not None else None
        if not inner or reached is None or len(segments) > MAX_EXPAND_DEPTH:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        inner_paths.add(inner)
    return frozenset(inner_paths)


def _beneath(expand: frozenset[str], name: str) -> frozenset[str]:
    """The paths of `expand` that continue below `name`, relative to it."""
    return frozenset(path.split(".", 1)[1] for path in expand if path.startswith(name + "."))


class Serializer:
    """Renders one sandbox's objects. Unexpanded PaymentIntents are cached as JSON bytes per version, so a
    list page of 100 costs a join, not 100 encodings."""

    def __init__(self, sandbox: Sandbox, hosted_page_url: Callable[[str], str], now: Callable[[], int]) -> None:
        self._sandbox = sandbox
        self._hosted_page_url = hosted_page_url
        self._now = now  # a balance transaction is `pending` until its available_on, on the sandbox clock
        self._intent_json: dict[str, tuple[PaymentIntent, bytes]] = {}

    # ---- PaymentIntent -----------------------------------------------------------------------------------
    def intent_json(self, intent: PaymentIntent, expand: frozenset[str] = frozenset()) -> bytes:
        if expand:
            return dumps(self.intent(intent, expand))
        cached = self._intent_json.get(intent.id)
        if cached is not None and cached[0] is intent:
            return cached[1]
        # Encode only what varies; the fields every intent shares are one pre-encoded fragment.
        encoded = dumps(self._intent_values(intent, frozenset()))[:-1] + _INTENT_CONSTANTS_JSON
        if self._sandbox.intents.get(intent.id) is intent:  # an event's older snapshot would only evict it
            self._intent_json[intent.id] = (intent, encoded)
        return encoded

    def warm(self, intent_ids: Iterable[str]) -> None:
        """Encode ahead of the first list page that shows these intents."""
        intents = self._sandbox.intents
        for intent_id in intent_ids:
            intent = intents.get(intent_id)
            if intent is not None:
                self.intent_json(intent)

    def intent(self, intent: PaymentIntent, expand: frozenset[str] = frozenset()) -> dict[str, Any]:
        return {**_INTENT_CONSTANTS, **self._intent_values(intent, expand)}

    def _intent_values(self, intent: PaymentIntent, expand: frozenset[str]) -> dict[str, Any]:
        linked = self._linked({"payment_method": intent.payment_method, "latest_charge": intent.latest_charge}, expand)
        return {
            "id": intent.id,
            "amount": intent.amount,
            "amount_capturable": intent.amount_capturable,
            "amount_received": intent.amount_received,
            "automatic_payment_methods": (
                {"allow_redirects": "always", "enabled": True} if intent.automatic_payment_methods else None
            ),
            "canceled_at": intent.canceled_at,
            "cancellation_reason": intent.cancellation_reason,
            "capture_method": intent.capture_method,
            "client_secret": intent.client_secret,
            "created": intent.created,
            "currency": intent.currency,
            "description": intent.description,
            "last_payment_error": self._last_payment_error(intent.last_payment_error),
            "latest_charge": linked["latest_charge"],
            "metadata": dict(intent.metadata),
            "next_action": self._next_action(intent),
            "payment_method": linked["payment_method"],
            "payment_method_options": (
                {ALMA: {"capture_method": intent.alma_capture_method}} if ALMA in intent.payment_method_types else {}
            ),
            "payment_method_types": list(intent.payment_method_types),
            "status": intent.status,
        }

    def _linked(self, ids: dict[str, str | None], expand: frozenset[str]) -> dict[str, Any]:
        """Fields that name another object: its id, or the object itself where `expand` asks for it (with
        whatever `expand` asks for beneath it)."""
        linked: dict[str, Any] = dict(ids)
        named = {path.split(".", 1)[0] for path in expand}
        for name in named & ids.keys():
            object_id = ids[name]
            if object_id is not None:
                linked[name] = self._render_linked(name, object_id, _beneath(expand, name))
        return linked

    def _render_linked(self, field_name: str, object_id: str, expand: frozenset[str]) -> dict[str, Any]:
        sandbox = self._sandbox
        if field_name == "payment_intent":
            return self.intent(sandbox.intents[object_id], expand)
        if field_name == "payment_method":
            return self.payment_method(sandbox.payment_methods[object_id])
        if field_name in ("charge", "latest_charge"):
            return self.charge(sandbox.charges[object_id], expand)
        if field_name == "source":
            if object_id in sandbox.charges:
                return self.charge(sandbox.charges[object_id])
            return self.refund(sandbox.refunds[object_id])
        return self.balance_transaction(sandbox.balance_transactions[object_id], expand)  # (failure_)balance_...

    def _next_action(self, intent: PaymentIntent) -> dict[str, Any] | None:
        if intent.redirect is None:
            return None
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": intent.redirect.return_url,
                "url": self._hosted_page_url(intent.redirect.token),
            },
        }

    def _last_payment_error(self, error: PaymentError | None) -> dict[str, Any] | None:
        if error is None:
            return None
        return _filled(
            LAST_PAYMENT_ERROR_FIELDS,
            code=error.code,
            doc_url=doc_url(error.code),
            message=error.message,
            payment_method=self.payment_method(self._sandbox.payment_methods[error.payment_method]),
            payment_method_type=ALMA,
            type="invalid_request_error",
        )

    # ---- PaymentMethod / Charge / Event ------------------------------------------------------------------
    def payment_method(self, payment_method: PaymentMethod) -> dict[str, Any]:
        return _filled(
            PAYMENT_METHOD_FIELDS,
            id=payment_method.id,
            object="payment_method",
            alma={},
            allow_redisplay="unspecified",
            billing_details=_billing_details(payment_method.billing),
            created=payment_method.created,
            livemode=False,
            metadata={},
            type=payment_method.type,
        )

    def charge(self, charge: Charge, expand: frozenset[str] = frozenset()) -> dict[str, Any]:
        linked = self._linked(
            {
                "payment_intent": charge.payment_intent,
                "payment_method": charge.payment_method,
                "balance_transaction": charge.balance_transaction,
            },
            expand,
        )
        return _filled(
            CHARGE_FIELDS,
            id=charge.id,
            object="charge",
            amount=charge.amount,
            amount_captured=charge.amount_captured,
            amount_refunded=charge.amount_refunded,
            billing_details=_billing_details(charge.billing),
            calculated_statement_descriptor="ALMA SANDBOX",
            captured=charge.captured,
            created=charge.created,
            currency=charge.currency,
            description=charge.description,
            disputed=False,
            fraud_details={"stripe_report": None, "user_report": None},
            livemode=False,
            metadata=dict(charge.metadata),
            outcome=_filled(
                OUTCOME_FIELDS,
                network_status="approved_by_network",
                risk_level="not_assessed",
                seller_message="Payment complete.",
                type="authorized",
            ),
            paid=True,
            payment_method_details={
                "type": ALMA,
                ALMA: {"installments": {"count": charge.installments}, "transaction_id": charge.transaction_id},
            },
            refunded=charge.amount_refunded == charge.amount,
            status="succeeded",
            **linked,
        )

    def refund(self, refund: Refund, expand: frozenset[str] = frozenset()) -> dict[str, Any]:
        sandbox = self._sandbox
        linked = self._linked(
            {
                "balance_transaction": refund.balance_transaction,
                "charge": refund.charge,
                "payment_intent": refund.payment_intent,
                "failure_balance_transaction": refund.failure_balance_transaction,
            },
            expand,
        )
        return _filled(
            REFUND_FIELDS,
            id=refund.id,
            object="refund",
            amount=refund.amount,
            created=refund.created,
            currency=refund.currency,
            destination_details={"type": ALMA, ALMA: {}},
            failure_reason=refund.failure_reason,
            metadata=dict(refund.metadata),
            payment_method=sandbox.charges[refund.charge].payment_method,
            pending_reason="processing" if refund.status == "pending" else None,
            reason=refund.reason,
            status=refund.status,
            **linked,
        )

    def balance_transaction(
        self, transaction: BalanceTransaction, expand: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        linked = self._linked({"source": transaction.source}, expand)
        rules = self._sandbox.rules
        rate = f"{rules.fee_basis_points / 100:.2f}% + {euros(rules.fee_fixed)}"
        fee_details = [
            {
                "amount": transaction.fee,
                "application": None,
                "currency": transaction.currency,
                "description": f"Alma fee (sandbox rate: {rate})",
                "type": "stripe_fee",
            }
        ]
        return _filled(
            BALANCE_TRANSACTION_FIELDS,
            id=transaction.id,
            object="balance_transaction",
            amount=transaction.amount,
            available_on=transaction.available_on,
            balance_type="payments",
            created=transaction.created,
            currency=transaction.currency,
            description=self._transaction_description(transaction),
            fee=transaction.fee,
            fee_details=fee_details if transaction.fee else [],
            net=transaction.net,
            reporting_category=transaction.type,
            source=linked["source"],
            status="available" if self._now() >= transaction.available_on else "pending",
            type=transaction.type,
        )

    def _transaction_description(self, transaction: BalanceTransaction) -> str | None:
        charges, refunds = self._sandbox.charges, self._sandbox.refunds
        charge = (
            charges[transaction.source] if transaction.type == "charge" else charges[refunds[transaction.source].charge]
        )
        if transaction.type == "charge":
            return charge.description
        label = "REFUND FOR PAYMENT" if transaction.type == "refund" else "REFUND FAILURE"
        return f"{label} ({charge.description})" if charge.description else label

    def event_json(self, event: Event) -> bytes:
        snapshot = event.object
        if isinstance(snapshot, PaymentIntent):
            data_object = self.intent_json(snapshot)
        elif isinstance(snapshot, Refund):
            data_object = dumps(self.refund(snapshot))
        else:
            data_object = dumps(self.charge(snapshot))
        envelope = dumps(
            {
                "id": event.id,
                "object": "event",
                "account": None,
                "api_version": API_VERSION,
                "context": None,
                "created": event.created,
                "livemode": False,
                "pending_webhooks": 0,
                "request": {
                    "id": event.request.id if event.request else None,
                    "idempotency_key": event.request.idempotency_key if event.request else None,
                },
                "type": event.type,
            }
        )
        return envelope[:-1] + b',"data":{"object":' + data_object + b',"previous_attributes":null}}'


def list_json(url: str, items: list[bytes], has_more: bool) -> bytes:
    return b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(items),
            b'],"has_more":',
            b"true" if has_more else b"false",
            b',"url":',
            dumps(url),
            b"}",
        )
    )


def search_json(url: str, items: list[bytes], has_more: bool, next_page: str | None) -> bytes:
    return b"".join(
        (
            b'{"object":"search_result","data":[',
            b",".join(items),
            b'],"has_more":',
            b"true" if has_more else b"false",
            b',"next_page":',
            dumps(next_page),
            b',"url":',
            dumps(url),
            b"}",
        )
    )
