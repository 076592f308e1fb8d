"""The /v1 endpoints: typed reading of Stripe's parameters -> one model call -> the serialized answer.

Handlers are plain synchronous functions of a `Call`; transport concerns (auth, faults, idempotency, stats)
live in app.py.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import StripeApiError, invalid_request, parameter_invalid, resource_missing, shown
from .forms import (
    FREE_HASH,
    LIST,
    RANGE,
    SCALAR,
    Params,
    Schema,
    as_int,
    check_known,
    check_length,
    created_range,
    expand_paths,
    metadata_update,
    one_of,
    optional_bool,
    optional_int,
    required,
)
from .index import CreatedIndex, PageRequest
from .model import (
    ALMA,
    ALMA_CURRENCY,
    CANCELLATION_REASONS,
    CAPTURE_METHODS,
    NO_CUSTOMER,
    REFUND_REASONS,
    Attempt,
    Customer,
    IntentDraft,
    PaymentIntent,
    RefundDraft,
    RequestRef,
    Sandbox,
)
from .search_query import SearchQueryError, parse_search_query
from .serializers import (
    Serializer,
    check_expand,
    dumps,
    list_json,
    search_json,
)

# ISO 4217 codes Stripe settles in (the subset a merchant in Europe meets); anything else is "Invalid currency".
CURRENCIES = frozenset(
    [
        "aed",
        "aud",
        "bgn",
        "brl",
        "cad",
        "chf",
        "cny",
        "czk",
        "dkk",
        "eur",
        "gbp",
        "hkd",
        "huf",
        "idr",
        "ils",
        "inr",
        "isk",
        "jpy",
        "krw",
        "mad",
        "mxn",
        "myr",
        "nok",
        "nzd",
        "php",
        "pln",
        "ron",
        "sar",
        "sek",
        "sgd",
        "thb",
        "try",
        "twd",
        "usd",
        "zar",
    ]
)


@dataclass(frozen=True)
class Call:
    sandbox: Sandbox
    serializer: Serializer
    params: Params
    path: Mapping[str, str]
    at: int  # the sandbox clock when the request arrived
    request: RequestRef


Handler = Callable[[Call], bytes]

_EXPAND = {"expand": LIST}
_PAYMENT_METHOD_DATA: Schema = {
    "type": SCALAR,
    "alma": {},
    "metadata": FREE_HASH,
    "billing_details": {
        "address": dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"), SCALAR),
        "email": SCALAR,
        "name": SCALAR,
        "phone": SCALAR,
    },
}
_PAYMENT_METHOD_OPTIONS: Schema = {"alma": {"capture_method": SCALAR}}
_CONFIRM_FIELDS: Schema = {
    "payment_method_data": _PAYMENT_METHOD_DATA,
    "payment_method_options": _PAYMENT_METHOD_OPTIONS,
    "return_url": SCALAR,
    "capture_method": SCALAR,
    **_EXPAND,
}
CREATE_SCHEMA: Schema = {
    **_CONFIRM_FIELDS,
    "amount": SCALAR,
    "currency": SCALAR,
    "payment_method_types": LIST,
    "confirm": SCALAR,
    "description": SCALAR,
    "metadata": FREE_HASH,
    "automatic_payment_methods": {"enabled": SCALAR, "allow_redirects": SCALAR},
}
UPDATE_SCHEMA: Schema = {"description": SCALAR, "metadata": FREE_HASH, **_EXPAND}
CANCEL_SCHEMA: Schema = {"cancellation_reason": SCALAR, **_EXPAND}
CAPTURE_SCHEMA: Schema = {"amount_to_capture": SCALAR, **_EXPAND}
RETRIEVE_INTENT_SCHEMA: Schema = {"client_secret": SCALAR, **_EXPAND}
_PAGE: Schema = {"limit": SCALAR, "starting_after": SCALAR, "ending_before": SCALAR, "created": RANGE, **_EXPAND}
LIST_SCHEMA: Schema = _PAGE
EVENTS_SCHEMA: Schema = {**_PAGE, "type": SCALAR, "types": LIST}
SEARCH_SCHEMA: Schema = {"query": SCALAR, "limit": SCALAR, "page": SCALAR, **_EXPAND}
REFUND_SCHEMA: Schema = {
    "payment_intent": SCALAR,
    "charge": SCALAR,
    "amount": SCALAR,
    "reason": SCALAR,
    "metadata": FREE_HASH,
    **_EXPAND,
}
REFUND_LIST_SCHEMA: Schema = {**_PAGE, "payment_intent": SCALAR, "charge": SCALAR}
BALANCE_LIST_SCHEMA: Schema = {**_PAGE, "type": SCALAR, "source": SCALAR}
DESCRIPTION_MAX_LENGTH = 1_000  # Stripe's OpenAPI spec: a PaymentIntent's `description` has maxLength 1000
MAX_EVENT_TYPES = 20  # Stripe's API reference: `types` is "an array of up to 20 strings"


# ---- PaymentIntents ----------------------------------------------------------------------------------------
def create_payment_intent(call: Call) -> bytes:
    params = call.params
    check_known(params, CREATE_SCHEMA)
    amount = as_int(required(params, "amount"), "amount")
    currency = _currency(required(params, "currency"))
    types = params.get("payment_method_types")
    automatic = params.get("automatic_payment_methods") or {}
    automatic_enabled = optional_bool(automatic, "enabled") if automatic else types is None
    if types is not None and automatic_enabled:
        raise invalid_request(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types."
        )
    if types is None:  # the account's enabled methods: Alma for euros; cards for anything else
        types = [ALMA] if currency == ALMA_CURRENCY else ["card"]
    draft = IntentDraft(
        amount=amount,
        currency=currency,
        payment_method_types=tuple(types),
        automatic_payment_methods=automatic_enabled,
        capture_method=one_of(params, "capture_method", CAPTURE_METHODS, "automatic_async") or "automatic_async",
        alma_capture_method=_alma_capture_method(params),
        description=_description(params),
        metadata=metadata_update({}, params.get("metadata")),
        payment_method_type=_payment_method_type(params),
        confirm=optional_bool(params, "confirm"),
        return_url=_return_url(params),
        billing=_billing(params),
    )
    intent = call.sandbox.create_intent(draft, call.at, call.request)
    return _intent_answer(call, intent)


def retrieve_payment_intent(call: Call) -> bytes:
    check_known(call.params, RETRIEVE_INTENT_SCHEMA)
    return _intent_answer(call, call.sandbox.intent(call.path["id"]))


def update_payment_intent(call: Call) -> bytes:
    params = call.params
    check_known(params, UPDATE_SCHEMA)
    intent = call.sandbox.intent(call.path["id"])
    metadata = metadata_update(intent.metadata, params["metadata"]) if "metadata" in params else None
    description = _description(params) or "" if "description" in params else None
    updated = call.sandbox.update_intent(intent.id, description, metadata)
    return _intent_answer(call, updated)


def confirm_payment_intent(call: Call) -> bytes:
    params = call.params
    check_known(params, _CONFIRM_FIELDS)
    return _acting(
        call,
        lambda intent_id: call.sandbox.confirm(
            intent_id,
            Attempt(
                payment_method_type=_payment_method_type(params),
                return_url=_return_url(params),
                capture_method=one_of(params, "capture_method", CAPTURE_METHODS),
                alma_capture_method=_alma_capture_method(params),
                billing=_billing(params),
            ),
            call.at,
            call.request,
        ),
    )


def cancel_payment_intent(call: Call) -> bytes:
    check_known(call.params, CANCEL_SCHEMA)
    reason = one_of(call.params, "cancellation_reason", CANCELLATION_REASONS)
    return _acting(call, lambda intent_id: call.sandbox.cancel(intent_id, reason, call.at, call.request))


def capture_payment_intent(call: Call) -> bytes:
    check_known(call.params, CAPTURE_SCHEMA)
    amount = optional_int(call.params, "amount_to_capture")
    return _acting(call, lambda intent_id: call.sandbox.capture(intent_id, amount, call.at, call.request))


def list_payment_intents(call: Call) -> bytes:
    check_known(call.params, LIST_SCHEMA)
    expand = check_expand(expand_paths(call.params), "payment_intent", "data.")
    ids, has_more = _page(call.sandbox.intent_index, call.params, "payment_intent")
    intents = call.sandbox.intents
    items = [call.serializer.intent_json(intents[intent_id], expand) for intent_id in ids]
    return list_json("/v1/payment_intents", items, has_more)


def search_payment_intents(call: Call) -> bytes:
    params = call.params
    check_known(params, SEARCH_SCHEMA)
    expand = check_expand(expand_paths(params), "payment_intent", "data.")
    try:
        matches = parse_search_query(required(params, "query"))
    except SearchQueryError as error:
        raise parameter_invalid(error.param, str(error)) from None
    intents = call.sandbox.intents
    request = PageRequest(limit=_limit(params), starting_after=_page_cursor(params.get("page"), intents))
    ids, has_more = call.sandbox.intent_index.page(request, lambda intent_id: matches(_searchable(intents[intent_id])))
    items = [call.serializer.intent_json(intents[intent_id], expand) for intent_id in ids]
    next_page = base64.urlsafe_b64encode(ids[-1].encode()).decode() if has_more else None
    return search_json("/v1/payment_intents/search", items, has_more, next_page)


# ---- PaymentMethods, Charges, Events -----------------------------------------------------------------------
def retrieve_payment_method(call: Call) -> bytes:
    check_known(call.params, _EXPAND)
    check_expand(expand_paths(call.params), "payment_method")
    payment_method = call.sandbox.payment_methods.get(call.path["id"])
    if payment_method is None:
        raise resource_missing("PaymentMethod", call.path["id"], "payment_method")
    return dumps(call.serializer.payment_method(payment_method))


def retrieve_charge(call: Call) -> bytes:
    check_known(call.params, _EXPAND)
    expand = check_expand(expand_paths(call.params), "charge")
    charge = call.sandbox.charges.get(call.path["id"])
    if charge is None:
        raise resource_missing("charge", call.path["id"], "id")
    return dumps(call.serializer.charge(charge, expand))


def list_events(call: Call) -> bytes:
    params = call.params
    check_known(params, EVENTS_SCHEMA)
    check_expand(expand_paths(params), "event", "data.")
    if "type" in params and "types" in params:
        raise invalid_request("You may only specify one of these parameters: type, types.")
    patterns = [params["type"]] if "type" in params else list(params.get("types") or [])
    if len(patterns) > MAX_EVENT_TYPES:
        raise parameter_invalid("types", f"Invalid array: at most {MAX_EVENT_TYPES} event types, got {len(patterns)}")
    events = call.sandbox.events
    accept: Callable[[str], bool] | None = None
    if patterns:
        type_matches = event_type_matcher(patterns)
        # Decided once per event type the account has (a few dozen at most), then a set lookup per event.
        wanted = {event_type for event_type in call.sandbox.event_types if type_matches(event_type)}

        def of_listed_type(event_id: str) -> bool:
            return events[event_id].type in wanted

        accept = of_listed_type
        if not wanted:  # nothing can match: answer without walking the history (cursors are still checked)
            _page(call.sandbox.event_index, params, "event")
            return list_json("/v1/events", [], False)
    ids, has_more = _page(call.sandbox.event_index, params, "event", accept)
    items = [call.serializer.event_json(events[event_id]) for event_id in ids]
    return list_json("/v1/events", items, has_more)


def retrieve_event(call: Call) -> bytes:
    check_known(call.params, _EXPAND)
    event = call.sandbox.events.get(call.path["id"])
    if event is None:
        raise resource_missing("event", call.path["id"], "id")
    return call.serializer.event_json(event)


# ---- Refunds and balance transactions ---------------------------------------------------------------------
def create_refund(call: Call) -> bytes:
    params = call.params
    check_known(params, REFUND_SCHEMA)
    charge, payment_intent = params.get("charge") or None, params.get("payment_intent") or None
    if charge and payment_intent:
        raise invalid_request("You may only specify one of these parameters: charge, payment_intent.")
    if not (charge or payment_intent):
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent or charge."
        )
    draft = RefundDraft(
        charge=charge,
        payment_intent=payment_intent,
        amount=optional_int(params, "amount"),
        reason=one_of(params, "reason", REFUND_REASONS) or None,
        metadata=metadata_update({}, params.get("metadata")),
    )
    refund = call.sandbox.refund(draft, call.at, call.request)
    return dumps(call.serializer.refund(refund, check_expand(expand_paths(params), "refund")))


def retrieve_refund(call: Call) -> bytes:
    return _retrieve(call, call.sandbox.refunds, "refund", "refund", call.serializer.refund)


def list_refunds(call: Call) -> bytes:
    sandbox = call.sandbox
    return _filtered_list(
        call,
        ListedKind("/v1/refunds", "refund", REFUND_LIST_SCHEMA, ("charge", "payment_intent"), "refund"),
        sandbox.refund_index,
        sandbox.refunds,
        call.serializer.refund,
    )


def retrieve_balance_transaction(call: Call) -> bytes:
    sandbox, serializer = call.sandbox, call.serializer
    return _retrieve(
        call,
        sandbox.balance_transactions,
        "balance transaction",
        "txn",
        serializer.balance_transaction,
    )


def list_balance_transactions(call: Call) -> bytes:
    sandbox = call.sandbox
    kind = ListedKind(
        "/v1/balance_transactions",
        "balance transaction",
        BALANCE_LIST_SCHEMA,
        ("type", "source"),
        "txn",
    )
    return _filtered_list(
        call, kind, sandbox.balance_index, sandbox.balance_transactions, call.serializer.balance_transaction
    )


@dataclass(frozen=True)
class ListedKind:
    """What a list endpoint of plain objects needs to know: its URL, noun (for errors), parameters, the
    parameters that filter by an attribute of the same name, and what `data.` may expand."""

    url: str
    noun: str
    schema: Schema
    filters: tuple[str, ...]
    kind: str  # its name in serializers.EXPANDABLE


Render = Callable[[Any, frozenset[str]], dict[str, Any]]


def _retrieve(call: Call, objects: Mapping[str, Any], noun: str, kind: str, render: Render) -> bytes:
    check_known(call.params, _EXPAND)
    expand = check_expand(expand_paths(call.params), kind)
    found = objects.get(call.path["id"])
    if found is None:
        raise resource_missing(noun, call.path["id"], "id")
    return dumps(render(found, expand))


def _filtered_list(
    call: Call, kind: ListedKind, index: CreatedIndex, objects: Mapping[str, Any], render: Render
) -> bytes:
    params = call.params
    check_known(params, kind.schema)
    expand = check_expand(expand_paths(params), kind.kind, "data.")
    wanted = {name: params[name] for name in kind.filters if params.get(name)}
    accept: Callable[[str], bool] | None = None
    if wanted:

        def matches_filters(object_id: str) -> bool:
            return all(getattr(objects[object_id], name) == value for name, value in wanted.items())

        accept = matches_filters
    ids, has_more = _page(index, params, kind.noun, accept)
    return list_json(kind.url, [dumps(render(objects[object_id], expand)) for object_id in ids], has_more)


# ---- shared reading ----------------------------------------------------------------------------------------
def _intent_answer(call: Call, intent: PaymentIntent) -> bytes:
    expand = check_expand(expand_paths(call.params), "payment_intent")
    return call.serializer.intent_json(intent, expand)


def _acting(call: Call, action: Callable[[str], PaymentIntent]) -> bytes:
    """Run a state-changing action; state errors carry the intent as it stands, as Stripe's do."""
    intent_id = call.path["id"]
    try:
        intent = action(intent_id)
    except StripeApiError as error:
        if error.code == "payment_intent_unexpected_state" and intent_id in call.sandbox.intents:
            error.extra["payment_intent"] = call.serializer.intent(call.sandbox.intents[intent_id])
        raise
    return _intent_answer(call, intent)


def _description(params: Params) -> str | None:
    value = params.get("description")
    return check_length(value, "description", DESCRIPTION_MAX_LENGTH) or None if value is not None else None


def _return_url(params: Params) -> str | None:
    """Where Alma sends the customer back: an http(s) address, never `javascript:` or `data:`."""
    value = params.get("return_url") or None
    if value is not None:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise parameter_invalid("return_url", f"Not a valid URL: {shown(value)}", "url_invalid")
    return value


def _currency(value: str) -> str:
    currency = value.lower()
    if currency not in CURRENCIES:
        raise parameter_invalid("currency", f"Invalid currency: {value}.", "invalid_currency")
    return currency


def _payment_method_type(params: Params) -> str | None:
    data = params.get("payment_method_data")
    if not data:
        return None
    return required(data, "type") if isinstance(data, dict) else None


def _billing(params: Params) -> Customer:
    """payment_method_data[billing_details][name|email]: what the sandbox keeps of the customer."""
    data = params.get("payment_method_data")
    details = data.get("billing_details") if isinstance(data, dict) else None
    if not isinstance(details, dict):
        return NO_CUSTOMER
    return Customer(name=details.get("name") or None, email=details.get("email") or None)


def _alma_capture_method(params: Params) -> str | None:
    options = params.get("payment_method_options") or {}
    alma = options.get("alma") or {}
    return one_of(alma, "capture_method", ("manual", "")) or None


def _limit(params: Params) -> int:
    limit = optional_int(params, "limit")
    if limit is None:
        return 10
    if not 1 <= limit <= 100:
        raise parameter_invalid("limit", f"Invalid limit: {limit}. Limit must be between 1 and 100.")
    return limit


def _page(
    index: CreatedIndex, params: Params, noun: str, accept: Callable[[str], bool] | None = None
) -> tuple[list[str], bool]:
    lowest, highest = created_range(params.get("created"))
    request = PageRequest(
        limit=_limit(params),
        lowest=lowest,
        highest=highest,
        starting_after=params.get("starting_after") or None,
        ending_before=params.get("ending_before") or None,
    )
    for cursor in ("starting_after", "ending_before"):
        object_id = getattr(request, cursor)
        if object_id is not None and object_id not in index:
            raise resource_missing(noun, object_id, cursor)
    return index.page(request, accept)


def event_type_matcher(patterns: list[str]) -> Callable[[str], bool]:
    """Event types as Stripe filters them: exact names, where `*` is a wildcard (any run of characters)."""
    matchers = [_wildcard_matcher(pattern) for pattern in patterns]
    return lambda event_type: any(matches(event_type) for matches in matchers)


def _wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    """One pattern, matched without a regular expression: a backtracking `.*.*...` took exponential time on
    a run of stars. Here the text between stars must appear in order, and the leftmost occurrence of each
    piece is always the best choice, so one left-to-right scan decides (runs of stars count as one)."""
    head, *inner, tail = pattern.split("*") if "*" in pattern else (pattern, None)
    if tail is None:
        return lambda event_type: event_type == pattern
    pieces = [piece for piece in inner if piece]

    def matches(event_type: str) -> bool:
        end = len(event_type) - len(tail)
        if end < len(head) or not (event_type.startswith(head) and event_type.endswith(tail)):
            return False
        position = len(head)
        for piece in pieces:
            found = event_type.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return matches


def _page_cursor(page: Any, intents: Mapping[str, PaymentIntent]) -> str | None:
    if not page:
        return None
    try:
        intent_id = base64.urlsafe_b64decode(str(page).encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        intent_id = ""
    if intent_id not in intents:
        raise parameter_invalid("page", f"Invalid page: {page}")
    return intent_id


def _searchable(intent: PaymentIntent) -> dict[str, Any]:
    """The fields search can name, valued exactly as in the serialized PaymentIntent; building the whole
    object for every candidate would make one search cost a full serialization of the account."""
    return {
        "amount": intent.amount,
        "created": intent.created,
        "currency": intent.currency,
        "status": intent.status,
        "metadata": intent.metadata,
    }
