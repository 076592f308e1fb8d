"""Stripe's search query language over serialized PaymentIntents: matching rules and refused queries."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.sandbox.search_query import MAX_CLAUSES, SearchQueryError, parse_search_query


def intent(id: str, status: str, amount: int, created: int, currency: str = "eur", **metadata: str) -> dict[str, Any]:
    return {
        "id": id,
        "object": "payment_intent",
        "status": status,
        "amount": amount,
        "currency": currency,
        "created": created,
        "metadata": metadata,
    }


INTENTS = [
    intent("pi_ok", "succeeded", 15000, 1_700_000_000, order_id="6735", shop="Paris Nord"),
    intent("pi_wait", "requires_action", 5000, 1_700_000_100, order_id="6736"),
    intent("pi_fail", "requires_payment_method", 500000, 1_700_000_200),
    intent("pi_usd", "canceled", 9900, 1_700_000_300, currency="usd", shop="New York"),
    intent("pi_empty", "succeeded", 7000, 1_700_000_400, order_id=""),
]


def matching(query: str) -> list[str]:
    predicate = parse_search_query(query)
    return [pi["id"] for pi in INTENTS if predicate(pi)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:'succeeded'", ["pi_ok", "pi_empty"]),
        ('status:"requires_action"', ["pi_wait"]),
        ("status:succeeded", ["pi_ok", "pi_empty"]),
        ("status:'SUCCEEDED'", ["pi_ok", "pi_empty"]),
        ("status:'succeed'", []),
        ("currency:'usd'", ["pi_usd"]),
        ("currency:'EUR'", ["pi_ok", "pi_wait", "pi_fail", "pi_empty"]),
        ("currency~'usd'", ["pi_usd"]),
        ("amount:5000", ["pi_wait"]),
        ("amount=5000", ["pi_wait"]),
        ("amount:'5000'", ["pi_wait"]),
        ("amount>9900", ["pi_ok", "pi_fail"]),
        ("amount>=9900", ["pi_ok", "pi_fail", "pi_usd"]),
        ("amount<7000", ["pi_wait"]),
        ('amount<="7000"', ["pi_wait", "pi_empty"]),
        ("created>=1700000200", ["pi_fail", "pi_usd", "pi_empty"]),
        ("created<1700000100", ["pi_ok"]),
        ("metadata['order_id']:'6735'", ["pi_ok"]),
        ('metadata["order_id"]:"6736"', ["pi_wait"]),
        ("metadata['shop']:'paris nord'", ["pi_ok"]),
        ("metadata['shop']:'Paris'", []),
        ("metadata['order_id']:null", ["pi_fail", "pi_usd", "pi_empty"]),
        ("metadata['order_id']:NULL", ["pi_fail", "pi_usd", "pi_empty"]),
        ("-metadata['order_id']:null", ["pi_ok", "pi_wait"]),
        ("metadata['order_id']:'null'", []),
        ("status:null", []),
        ("-currency:'eur'", ["pi_usd"]),
        ("-status:'succeeded'", ["pi_wait", "pi_fail", "pi_usd"]),
        ("-amount>9900", ["pi_wait", "pi_usd", "pi_empty"]),
    ],
)
def test_single_clause_selects_the_intents_stripe_would(query: str, expected: list[str]) -> None:
    assert matching(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:'succeeded' AND amount>10000", ["pi_ok"]),
        ("status:'succeeded' and amount>10000", ["pi_ok"]),
        ("status:'succeeded' amount>10000", ["pi_ok"]),
        ("status:'succeeded' AND metadata['order_id']:'6735' AND currency:'eur'", ["pi_ok"]),
        ("status:'canceled' OR status:'requires_action'", ["pi_wait", "pi_usd"]),
        ("status:'canceled' or amount>100000", ["pi_fail", "pi_usd"]),
        ("  currency:'usd'   OR   -amount>5000  ", ["pi_wait", "pi_usd"]),
        ("amount>=5000 AND amount<=9900", ["pi_wait", "pi_usd", "pi_empty"]),
        ("-status:'succeeded' AND -currency:'usd'", ["pi_wait", "pi_fail"]),
    ],
)
def test_clauses_combine_with_and_or_but_one_kind_per_query(query: str, expected: list[str]) -> None:
    assert matching(query) == expected


def test_substring_match_is_case_insensitive_and_may_sit_anywhere() -> None:
    rows = [intent("pi_a", "succeeded", 5000, 1, currency="eur"), intent("pi_b", "succeeded", 5000, 1, currency="usd")]
    predicate = parse_search_query("currency~'EUR'")
    assert [pi["id"] for pi in rows if predicate(pi)] == ["pi_a"]


def test_quoted_values_keep_spaces_escaped_quotes_and_operators() -> None:
    rows = [
        intent("pi_quote", "succeeded", 5000, 1, note='the "Sky" and: sea'),
        intent("pi_apostrophe", "succeeded", 5000, 1, note="l'Atelier OR shop"),
    ]
    double = parse_search_query(r'metadata["note"]:"the \"Sky\" and: sea"')
    single = parse_search_query(r"metadata['note']:'l\'atelier or shop'")
    assert [pi["id"] for pi in rows if double(pi)] == ["pi_quote"]
    assert [pi["id"] for pi in rows if single(pi)] == ["pi_apostrophe"]


def test_metadata_keys_may_hold_spaces_and_dashes() -> None:
    row = intent("pi_key", "succeeded", 5000, 1, **{"donation-id": "D 1"})
    assert parse_search_query("metadata['donation-id']:'d 1'")(row)
    assert not parse_search_query("metadata['donation']:'d 1'")(row)


def test_intent_without_metadata_object_counts_as_missing_key() -> None:
    row = {"id": "pi_bare", "status": "succeeded", "amount": 5000, "currency": "eur", "created": 1, "metadata": None}
    assert parse_search_query("metadata['order_id']:null")(row)
    assert not parse_search_query("metadata['order_id']:'1'")(row)


def test_ten_clauses_are_allowed() -> None:
    query = " AND ".join(["amount>0"] * MAX_CLAUSES)
    assert matching(query) == [pi["id"] for pi in INTENTS]


@pytest.mark.parametrize(
    ("query", "message_part"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("status:'succeeded' AND amount>1 OR currency:'eur'", "AND and OR cannot be combined"),
        ("status:'succeeded' amount>1 OR currency:'eur'", "AND and OR cannot be combined"),
        ("customer_email:'a@b.c'", "Field `customer_email` is an unsupported search field"),
        ("description:'x'", "unsupported search field for resource `payment_intents`"),
        ("status~'succ'", "substring matching (`~`) is not supported for field `status`"),
        ("metadata['shop']~'Paris'", "substring matching (`~`) is not supported for field `metadata`"),
        ("currency~'eu'", "at least 3 characters"),
        ("amount~'500'", "substring matching (`~`) is not supported for field `amount`"),
        ("status>'a'", "numeric comparator `>` is not supported for field `status`"),
        ("currency>='eur'", "numeric comparator `>=` is not supported for field `currency`"),
        ("amount:'ten'", "'ten' is not an integer"),
        ("amount>12.5", "'12.5' is not an integer"),
        ("created>yesterday", "'yesterday' is not an integer"),
        ("amount>null", "`null` can only be used with `:`"),
        ("status", "expected an operator"),
        ("status 'succeeded'", "expected an operator"),
        ("status:", "expected a value after `status:`"),
        ("status: 'succeeded'", "expected a value after `status:`"),
        ("status:'succeeded", "is never closed"),
        ("metadata:'x'", "metadata must name its key"),
        ("metadata[order_id]:'x'", "non-empty quoted string"),
        ("metadata['']:'x'", "non-empty quoted string"),
        ("metadata['order_id':'x'", "expected `]`"),
        ("status:'succeeded' AND", "`AND` must be followed by a clause"),
        ("status:'succeeded' OR ", "`OR` must be followed by a clause"),
        ("AND status:'succeeded'", "unsupported search field"),
        ("status:'succeeded'amount>1", "unexpected `amount>1`"),
        ("(status:'succeeded')", "expected a field name at position 0"),
        ("--status:'succeeded'", "expected a field name at position 1"),
        (" AND ".join(["amount>0"] * (MAX_CLAUSES + 1)), f"at most {MAX_CLAUSES} clauses"),
    ],
)
def test_refused_queries_raise_a_message_naming_the_problem(query: str, message_part: str) -> None:
    with pytest.raises(SearchQueryError) as refused:
        parse_search_query(query)
    assert message_part in str(refused.value)
    assert refused.value.param == "query"


def test_search_query_error_is_a_value_error_so_callers_may_catch_either() -> None:
    with pytest.raises(ValueError):
        parse_search_query("nope:1")
