"""The tabular form of AlmaIntent that the store returns and analytics/charts read.

One schema, one row builder: the store fills its columns with `intent_row`, and tests build the same
frame from objects with `frame_from_intents`, so both paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from dashboard.domain import AlmaIntent, capture_deadline, expires_at, failure_kind, is_test_lab_intent

# column -> pandas dtype. Times are unix seconds (nullable where a fact may be unknown); money is cents.
COLUMNS: dict[str, str] = {
    "id": "string",
    "status": "string",
    "amount": "int64",
    "amount_received": "int64",
    "amount_capturable": "int64",
    "currency": "string",
    "created": "int64",
    "capture_method": "string",
    "description": "string",
    "metadata_text": "string",  # "k=v; k2=v2", for free-text search and display
    "payment_method_types": "string",  # comma-joined
    "error_code": "string",
    "error_message": "string",
    "failure_kind": "string",  # "expired" | "declined" | <NA>
    "installments": "Int64",
    "alma_transaction_id": "string",
    "latest_charge_id": "string",
    "redirect_url": "string",
    "cancellation_reason": "string",
    "canceled_at": "Int64",
    "authorized_at": "Int64",
    "sent_to_alma_at": "Int64",
    "updated_at": "Int64",
    "expires_at": "Int64",
    "capture_deadline": "Int64",
    "livemode": "bool",
    "test_lab": "bool",  # made by Test lab (domain.is_test_lab_intent): finance figures leave it out by default
    "customer_name": "string",
    "customer_email": "string",
}


def metadata_text(intent: AlmaIntent) -> str:
    """ "k=v; k2=v2": how metadata reads in the table, in searches and in the detail."""
    return "; ".join(f"{k}={v}" for k, v in intent.metadata)


def intent_row(intent: AlmaIntent, auth_window_seconds: int) -> dict[str, Any]:
    error = intent.last_error
    return {
        "id": intent.id,
        "status": intent.status,
        "amount": intent.amount,
        "amount_received": intent.amount_received,
        "amount_capturable": intent.amount_capturable,
        "currency": intent.currency,
        "created": intent.created,
        "capture_method": intent.capture_method,
        "description": intent.description,
        "metadata_text": metadata_text(intent),
        "payment_method_types": ",".join(intent.payment_method_types),
        "error_code": error.code if error else None,
        "error_message": error.message if error else None,
        "failure_kind": failure_kind(intent, auth_window_seconds),
        "installments": intent.installments,
        "alma_transaction_id": intent.alma_transaction_id,
        "latest_charge_id": intent.latest_charge_id,
        "redirect_url": intent.redirect_url,
        "cancellation_reason": intent.cancellation_reason,
        "canceled_at": intent.canceled_at,
        "authorized_at": intent.authorized_at,
        "sent_to_alma_at": intent.sent_to_alma_at,
        "updated_at": intent.updated_at,
        "expires_at": expires_at(intent, auth_window_seconds),
        "capture_deadline": capture_deadline(intent),
        "livemode": intent.livemode,
        "test_lab": is_test_lab_intent(intent.metadata),
        "customer_name": intent.customer_name,
        "customer_email": intent.customer_email,
    }


def typed_frame(rows: Iterable[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Give any rows (dicts or a SQL result frame) exactly COLUMNS, in order, with their dtypes."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame = frame.reindex(columns=list(COLUMNS))
    return frame.astype(COLUMNS)


def frame_from_intents(intents: Iterable[AlmaIntent], auth_window_seconds: int) -> pd.DataFrame:
    return typed_frame(intent_row(i, auth_window_seconds) for i in intents)
