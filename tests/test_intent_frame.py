from __future__ import annotations

from dataclasses import replace

import pandas as pd

from dashboard.domain import FAILED_CODE, AlmaIntent, LastPaymentError
from dashboard.intent_frame import COLUMNS, frame_from_intents, intent_row, typed_frame
from dashboard.settings import AUTH_WINDOW_SECONDS

WINDOW = AUTH_WINDOW_SECONDS
T0 = 1_790_000_000


def intent(**fields: object) -> AlmaIntent:
    base = AlmaIntent(id="pi_1", status="succeeded", amount=12_050, currency="eur", created=T0)
    return replace(base, **fields)


def test_row_has_exactly_the_schema_columns() -> None:
    assert list(intent_row(intent(), WINDOW)) == list(COLUMNS)


def test_row_derives_the_alma_facts() -> None:
    waiting = intent(
        status="requires_action",
        sent_to_alma_at=T0 + 5,
        metadata=(("order", "7"), ("shop", "fr")),
        payment_method_types=("alma",),
    )
    row = intent_row(waiting, WINDOW)
    assert row["expires_at"] == T0 + 5 + WINDOW
    assert row["metadata_text"] == "order=7; shop=fr"
    assert row["payment_method_types"] == "alma"
    assert row["capture_deadline"] is None and row["failure_kind"] is None


def test_row_of_a_declined_intent() -> None:
    error = LastPaymentError(code=FAILED_CODE, message="Refused", type="card_error", payment_method_type="alma")
    row = intent_row(intent(status="requires_payment_method", last_error=error), WINDOW)
    assert (row["error_code"], row["error_message"], row["failure_kind"]) == (FAILED_CODE, "Refused", "declined")


def test_frame_dtypes_and_nulls() -> None:
    frame = frame_from_intents([intent(), intent(id="pi_2", installments=3, amount=7_000)], WINDOW)
    assert frame.dtypes.astype(str).to_dict() == COLUMNS
    assert frame["amount"].sum() == 19_050  # integer cents, summed as integers
    assert frame["installments"].isna().tolist() == [True, False]
    assert frame["description"].isna().all()


def test_empty_frame_still_has_the_schema() -> None:
    frame = frame_from_intents([], WINDOW)
    assert frame.empty
    assert frame.dtypes.astype(str).to_dict() == COLUMNS


def test_typed_frame_orders_and_types_a_sql_like_result() -> None:
    rows = intent_row(intent(), WINDOW)
    sql_result = pd.DataFrame([{**rows, "livemode": 0, "installments": None}])[list(reversed(COLUMNS))]
    frame = typed_frame(sql_result)
    assert list(frame.columns) == list(COLUMNS)
    assert frame.dtypes.astype(str).to_dict() == COLUMNS
    assert not frame["livemode"].iloc[0]
