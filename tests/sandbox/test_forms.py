"""Stripe's form encoding, decoded: nested hashes, indexed and appended arrays, unknown-key paths."""

from __future__ import annotations

import pytest

from dashboard.sandbox.errors import StripeApiError
from dashboard.sandbox.forms import FREE_HASH, LIST, RANGE, SCALAR, check_known, created_range, metadata_update, nest


def test_nested_hashes_and_arrays() -> None:
    pairs = [
        ("amount", "100"),
        ("payment_method_types[0]", "alma"),
        ("payment_method_types[1]", "card"),
        ("payment_method_options[alma][capture_method]", "manual"),
        ("expand[]", "latest_charge"),
        ("expand[]", "payment_method"),
        ("metadata[order_id]", "7"),
    ]
    assert nest(pairs) == {
        "amount": "100",
        "payment_method_types": ["alma", "card"],
        "payment_method_options": {"alma": {"capture_method": "manual"}},
        "expand": ["latest_charge", "payment_method"],
        "metadata": {"order_id": "7"},
    }


def test_indexes_order_numerically() -> None:
    pairs = [(f"types[{index}]", str(index)) for index in (3, 2, 0, 1, 10, 4, 5, 6, 7, 8, 9)]
    assert nest(pairs) == {"types": [str(index) for index in range(11)]}


def test_numeric_metadata_keys_survive() -> None:
    assert nest([("metadata[7]", "x")]) == {"metadata": {"7": "x"}}
    assert metadata_update({}, nest([("metadata[0]", "a"), ("metadata[1]", "b")])["metadata"]) == {"0": "a", "1": "b"}


SCHEMA = {"amount": SCALAR, "types": LIST, "metadata": FREE_HASH, "created": RANGE, "data": {"type": SCALAR}}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"colour": "red"}, "colour"),
        ({"data": {"type": "alma", "extra": "x"}}, "data[extra]"),
        ({"created": {"after": "1"}}, "created[after]"),
    ],
)
def test_unknown_keys_are_named_by_their_full_path(params: dict[str, object], param: str) -> None:
    with pytest.raises(StripeApiError) as caught:
        check_known(params, SCHEMA)
    assert (caught.value.code, caught.value.param) == ("parameter_unknown", param)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"types": "alma"}, "types"),
        ({"types": [{"a": "b"}]}, "types"),
        ({"data": "x"}, "data"),
        ({"amount": ["1"]}, "amount"),
        ({"created": ["1"]}, "created"),
    ],
)
def test_wrong_shapes_are_refused(params: dict[str, object], param: str) -> None:
    with pytest.raises(StripeApiError) as caught:
        check_known(params, SCHEMA)
    assert caught.value.param == param


def test_created_range_bounds_are_inclusive() -> None:
    assert created_range("100") == (100, 100)
    assert created_range({"gt": "100", "lte": "200"}) == (101, 200)
    assert created_range({"gte": "100", "lt": "200"}) == (100, 199)
    assert created_range(None) == (None, None)


def test_metadata_merges_deletes_and_clears() -> None:
    assert metadata_update({"a": "1", "b": "2"}, {"b": "", "c": "3"}) == {"a": "1", "c": "3"}
    assert metadata_update({"a": "1"}, "") == {}
    assert metadata_update({"a": "1"}, None) == {"a": "1"}
