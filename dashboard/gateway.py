"""The one door to Stripe (or the local sandbox): the only module that imports `stripe`.

A few verbs with typed inputs and outputs. Results are frozen domain objects built from Stripe's JSON; no
stripe object and no client_secret ever leaves this module. Errors become our small GatewayError family,
keeping Stripe's `code`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import stripe

from dashboard.domain import AlmaIntent, BalanceTransaction, Refund, without_secrets
from dashboard.settings import LOCAL_SANDBOX_KEY, Mode, Settings

# stripe-python writes raw response bodies (client secrets among them) at debug level: to the "stripe" logger,
# and straight to stderr when STRIPE_LOG (or stripe.log) says "debug". Neither gets through: info at most.
logging.getLogger("stripe").setLevel(logging.INFO)
if "debug" in (stripe.log, os.environ.get("STRIPE_LOG", "").strip().lower()):
    stripe.log = "info"

PAGE_SIZE = 100
# Enough for our reads: without a typed filter, /v1/events would also return every unrelated event.
EVENT_TYPES: tuple[str, ...] = (
    "payment_intent.created",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.partially_funded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.succeeded",  # the charge carries the installments and the Alma transaction id
    "charge.captured",
    "charge.updated",
    "charge.refunded",  # a refund, or a canceled authorisation releasing the held amount
    "charge.expired",  # an authorisation not captured within 7 days
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
)
REQUIRES_ACTION_EVENT = "payment_intent.requires_action"
INTENT_EXPAND: tuple[str, ...] = ("latest_charge", "payment_method")
# A listing also brings each charge's fee (one request a page, not one an intent).
INTENT_LIST_EXPAND: tuple[str, ...] = (*INTENT_EXPAND, "latest_charge.balance_transaction")
NETWORK_RETRIES = 3  # stripe-python retries connection errors, 409 and 5xx, with its own backoff
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60

CaptureMethod = Literal["automatic", "manual"]


class GatewayError(Exception):
    """A failed Stripe call, with Stripe's own error code kept for the user to see."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.param = param
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class ReadOnlyModeError(GatewayError):
    """A write attempted with a live key: refused before any request is sent."""


class NotFoundError(GatewayError):
    pass


class RateLimitedError(GatewayError):
    pass


class GatewayUnavailable(GatewayError):
    """Network down or Stripe failing, after every retry."""


@dataclass(frozen=True)
class CreateIntentRequest:
    amount: int  # cents
    capture_method: CaptureMethod
    description: str | None
    metadata: tuple[tuple[str, str], ...]
    return_url: str
    customer_name: str | None = None  # billing_details, kept on the Alma method and repeated on the Charge
    customer_email: str | None = None


@dataclass(frozen=True)
class CreatedIntent:
    intent: AlmaIntent
    redirect_url: str | None  # the hosted Alma page; opaque token, no client secret in it


@dataclass(frozen=True)
class RefundRequest:
    intent_id: str
    amount: int | None  # cents; None refunds what is left
    reason: str | None  # duplicate | fraudulent | requested_by_customer


REFUND_REASONS: tuple[str, ...] = ("requested_by_customer", "duplicate", "fraudulent")


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: int
    object_id: str
    object: Mapping[str, Any]  # data.object as it stood then; client_secret stripped

    @property
    def intent_id(self) -> str | None:
        """The PaymentIntent this event is about (charges point at theirs)."""
        if self.type.startswith("payment_intent."):
            return self.object_id
        intent = self.object.get("payment_intent")
        return intent.get("id") if isinstance(intent, Mapping) else intent

    @classmethod
    def from_stripe(cls, payload: Mapping[str, Any]) -> StripeEvent:
        obj = without_secrets(payload["data"]["object"])
        return cls(
            id=payload["id"], type=payload["type"], created=int(payload["created"]), object_id=obj["id"], object=obj
        )


def submission_idempotency_key(action: str, submission_id: str, **fields: Any) -> str:
    """Same UI submission with the same fields -> same key, so a double click or a rerun creates nothing new."""
    material = json.dumps([action, submission_id, fields], sort_keys=True, default=str)
    return f"alma-ops-{action}-{hashlib.sha256(material.encode()).hexdigest()[:40]}"


def _billing_details(request: CreateIntentRequest) -> dict[str, Any]:
    details = {"name": request.customer_name, "email": request.customer_email}
    given = {key: value for key, value in details.items() if value}
    return {"billing_details": given} if given else {}


def _stripe_error(error: stripe.StripeError) -> GatewayError:
    details = error.error  # stripe-python leaves `code` unset on some classes (RateLimitError); the body has it
    fields: dict[str, Any] = {
        "code": error.code or (getattr(details, "code", None) if details is not None else None),
        "http_status": error.http_status,
        "param": getattr(details, "param", None) if details is not None else None,
        "request_id": error.request_id,
    }
    message = error.user_message or str(error)
    if isinstance(error, stripe.RateLimitError):
        return RateLimitedError(message, **fields)
    if isinstance(error, stripe.APIConnectionError) or (error.http_status or 0) >= 500:
        return GatewayUnavailable(message, **fields)
    if error.http_status == 404:
        return NotFoundError(message, **fields)
    return GatewayError(message, **fields)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    return next((value for key, value in (headers or {}).items() if key.lower() == name), None)


@dataclass(frozen=True)
class RateLimitBackoff:
    """stripe-python 16.1.0 retries a 429 only when Stripe adds `Stripe-Should-Retry: true` and never reads
    Retry-After, so rate-limited calls get this bounded backoff on top of its own retries."""

    retries: int = 6  # so a call sends at most retries + 1 requests and waits at most retries * max_delay
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, headers: Mapping[str, str] | None, attempt: int) -> float | None:
        """Seconds to wait before retry number attempt + 1 of a 429 with these response headers, or None to
        give up. A Retry-After is honoured up to max_delay."""
        if attempt >= self.retries or _header(headers, "stripe-should-retry") == "false":
            return None
        return min(max(_seconds(_header(headers, "retry-after")) or self._exponential(attempt), 0.0), self.max_delay)

    def _exponential(self, attempt: int) -> float:
        return self.base_delay * 2.0**attempt * random.uniform(0.5, 1.0)  # jitter: clients do not stampede


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:
        return None


class StripeGateway:
    def __init__(
        self,
        settings: Settings,
        *,
        api_base: str | None = None,
        rate_limit_backoff: RateLimitBackoff = RateLimitBackoff(),
    ) -> None:
        self.mode: Mode = settings.mode
        self._backoff = rate_limit_backoff
        api_base = api_base or settings.api_base
        if self.mode is Mode.LOCAL and not api_base:
            raise ValueError("Local mode needs the sandbox address (api_base).")
        key = LOCAL_SANDBOX_KEY if self.mode is Mode.LOCAL else settings.secret_key
        assert key is not None
        self._client = stripe.StripeClient(
            key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)),
        )
        self._count_lock = threading.Lock()
        self._requests = 0

    def __repr__(self) -> str:
        return f"StripeGateway(mode={self.mode.value})"

    @property
    def requests_made(self) -> int:
        """Calls sent by this gateway (a call retried by stripe-python counts once)."""
        return self._requests

    # -- plumbing -------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, idempotency_key: str | None = None, **params: Any) -> dict[str, Any]:
        """One API call as JSON. raw_request skips building StripeObjects, which costs ~25 ms per page of 100
        intents; the domain builds from plain dicts anyway."""
        if idempotency_key is not None:
            params["idempotency_key"] = idempotency_key
        attempt = 0
        while True:
            with self._count_lock:
                self._requests += 1
            try:
                answer: dict[str, Any] = self._client.raw_request(method, path, **params).data
                return answer
            except stripe.RateLimitError as error:
                delay = self._backoff.delay(error.headers, attempt)
                if delay is None:
                    raise _stripe_error(error) from None
                time.sleep(delay)
                attempt += 1
            except stripe.StripeError as error:
                raise _stripe_error(error) from None

    def _write(self, method: str, path: str, *, idempotency_key: str, **params: Any) -> dict[str, Any]:
        if not self.mode.can_write:
            raise ReadOnlyModeError(
                "Live mode is read-only: Alma Ops never creates, confirms, captures or cancels live payments.",
                code="live_mode_read_only",
            )
        return self._call(method, path, idempotency_key=idempotency_key, **params)

    def _pages(
        self, path: str, params: dict[str, Any], *, newer_than: str | None = None, older_than: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list endpoint, each newest first. Pages go back in time with `starting_after` (from
        `older_than` when given), or, from `newer_than`, forward with `ending_before` (then the pages come
        oldest page first)."""
        cursor = newer_than or older_than
        while True:
            direction = "ending_before" if newer_than else "starting_after"
            page = self._call("get", path, limit=PAGE_SIZE, **params, **({direction: cursor} if cursor else {}))
            data = page.get("data") or []
            if data:
                yield data
            if not page.get("has_more") or not data:
                return
            cursor = data[0]["id"] if newer_than else data[-1]["id"]

    # -- reads ----------------------------------------------------------------------------------------------

    def list_intents(
        self, created_gte: int, created_lt: int | None = None, *, starting_after: str | None = None
    ) -> Iterator[list[AlmaIntent]]:
        """All intents created in the window, one list per page of 100, newest first; from `starting_after`
        (the last intent of a page already read) to resume a listing. Every intent is yielded (lists cannot
        filter by method); the caller keeps the Alma ones."""
        created: dict[str, int] = {"gte": created_gte}
        if created_lt is not None:
            created["lt"] = created_lt
        expand = [f"data.{field}" for field in INTENT_LIST_EXPAND]
        params = {"created": created, "expand": expand}
        for page in self._pages("/v1/payment_intents", params, older_than=starting_after):
            yield [AlmaIntent.from_stripe(payload) for payload in page]

    def list_refunds(self, created_gte: int) -> tuple[list[Refund], list[BalanceTransaction]]:
        """Every refund created since created_gte (any method: the store keeps those of its intents), with
        the balance transactions they made, expanded in the same requests."""
        expand = [f"data.{field}" for field in ("balance_transaction", "failure_balance_transaction")]
        pages = self._pages("/v1/refunds", {"created": {"gte": created_gte}, "expand": expand})
        payloads = [payload for page in pages for payload in page]
        moves = [
            BalanceTransaction.from_stripe(payload[field])
            for payload in payloads
            for field in ("balance_transaction", "failure_balance_transaction")
            if isinstance(payload.get(field), Mapping)
        ]
        return [Refund.from_stripe(payload) for payload in payloads], moves

    def list_balance_transactions(self, created_gte: int) -> list[BalanceTransaction]:
        """Every balance transaction since created_gte: fees have no events, so a refresh lists them."""
        pages = self._pages("/v1/balance_transactions", {"created": {"gte": created_gte}})
        return [BalanceTransaction.from_stripe(payload) for page in pages for payload in page]

    def retrieve_refund(self, refund_id: str) -> Refund:
        return Refund.from_stripe(self._call("get", f"/v1/refunds/{refund_id}"))

    def list_events(self, created_gte: int, *, types: Sequence[str] = EVENT_TYPES) -> list[StripeEvent]:
        """Every event since created_gte, OLDEST FIRST (Stripe lists newest first)."""
        pages = list(self._pages("/v1/events", {"created": {"gte": created_gte}, "types": list(types)}))
        return [StripeEvent.from_stripe(payload) for page in reversed(pages) for payload in reversed(page)]

    def events_after(self, event_id: str, *, types: Sequence[str] = EVENT_TYPES) -> list[StripeEvent]:
        """Every event listed after `event_id` (newer), OLDEST FIRST: exactly what is new since that one."""
        pages = self._pages("/v1/events", {"types": list(types)}, newer_than=event_id)
        return [StripeEvent.from_stripe(payload) for page in pages for payload in reversed(page)]

    def recent_events(
        self,
        limit: int = PAGE_SIZE,
        *,
        created_gte: int | None = None,
        created_lte: int | None = None,
        types: Sequence[str] = EVENT_TYPES,
    ) -> list[StripeEvent]:
        """The newest `limit` events in the range, one request, OLDEST FIRST."""
        created = {key: value for key, value in (("gte", created_gte), ("lte", created_lte)) if value is not None}
        params: dict[str, Any] = {"limit": limit, "types": list(types), **({"created": created} if created else {})}
        page = self._call("get", "/v1/events", **params)
        return [StripeEvent.from_stripe(payload) for payload in reversed(page.get("data") or [])]

    def _retrieve_payload(self, intent_id: str) -> dict[str, Any]:
        return self._call("get", f"/v1/payment_intents/{intent_id}", expand=list(INTENT_EXPAND))

    def retrieve_intent(self, intent_id: str) -> AlmaIntent:
        return AlmaIntent.from_stripe(self._retrieve_payload(intent_id))

    def retrieve_intent_checking_secret(self, intent_id: str, client_secret: str) -> tuple[AlmaIntent, bool]:
        """For the return page: does the client_secret in the URL belong to this intent? The secret is
        compared here and goes nowhere else."""
        payload = self._retrieve_payload(intent_id)
        matches = hmac.compare_digest(str(payload.get("client_secret") or ""), client_secret or "")
        return AlmaIntent.from_stripe(payload), matches

    # -- writes (refused in live mode before any request) -----------------------------------------------------

    def create_alma_intent(self, request: CreateIntentRequest, idempotency_key: str) -> CreatedIntent:
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": "eur",
            "payment_method_types": ["alma"],
            "payment_method_data": {"type": "alma", **_billing_details(request)},
            "confirm": True,
            "return_url": request.return_url,
            "capture_method": request.capture_method,
            "expand": list(INTENT_EXPAND),
        }
        if request.description:
            params["description"] = request.description
        if request.metadata:
            params["metadata"] = dict(request.metadata)
        intent = AlmaIntent.from_stripe(
            self._write("post", "/v1/payment_intents", idempotency_key=idempotency_key, **params)
        )
        return CreatedIntent(intent=intent, redirect_url=intent.redirect_url)

    def cancel_intent(self, intent_id: str, idempotency_key: str) -> AlmaIntent:
        return AlmaIntent.from_stripe(
            self._write(
                "post",
                f"/v1/payment_intents/{intent_id}/cancel",
                idempotency_key=idempotency_key,
                expand=list(INTENT_EXPAND),
            )
        )

    def capture_intent(self, intent_id: str, amount_to_capture: int | None, idempotency_key: str) -> AlmaIntent:
        params: dict[str, Any] = {"expand": list(INTENT_EXPAND)}
        if amount_to_capture is not None:
            params["amount_to_capture"] = amount_to_capture
        return AlmaIntent.from_stripe(
            self._write("post", f"/v1/payment_intents/{intent_id}/capture", idempotency_key=idempotency_key, **params)
        )

    def create_refund(self, request: RefundRequest, idempotency_key: str) -> Refund:
        params: dict[str, Any] = {"payment_intent": request.intent_id}
        if request.amount is not None:
            params["amount"] = request.amount
        if request.reason:
            params["reason"] = request.reason
        return Refund.from_stripe(self._write("post", "/v1/refunds", idempotency_key=idempotency_key, **params))
