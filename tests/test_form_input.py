"""Form input rules: Stripe's metadata limits and EUR amounts with whose range they are."""

from __future__ import annotations

import re

import pytest

from dashboard.form_input import (
    DESCRIPTION_MAX,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX,
    MetadataError,
    amount_range_problem,
    parse_amount,
    parse_description,
    parse_metadata,
)
from dashboard.settings import ALMA_MAX_CENTS, ALMA_MIN_CENTS


def test_metadata_lines_become_sorted_pairs() -> None:
    assert parse_metadata("team = qa\n\n order_id=A-17 \nempty=") == (
        ("empty", ""),
        ("order_id", "A-17"),
        ("team", "qa"),
    )
    assert parse_metadata("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no equals sign", "Line 1: write key=value."),
        ("a=1\n=2", "Line 2: write key=value."),
        ("[bad]=1", "Line 1: keys are 1–40 characters without square brackets."),
        ("k" * 41 + "=1", "Line 1: keys are 1–40 characters"),
        ("a=" + "v" * (METADATA_VALUE_MAX + 1), f"values are at most {METADATA_VALUE_MAX} characters"),
        ("a=1\na=2", "Line 2: the key `a` appears twice."),
        ("\n".join(f"k{n}=v" for n in range(METADATA_MAX_KEYS + 1)), f"At most {METADATA_MAX_KEYS} keys; got 51."),
    ],
)
def test_metadata_stripe_would_refuse_is_explained(text: str, message: str) -> None:
    with pytest.raises(MetadataError, match=re.escape(message)):
        parse_metadata(text)


def test_metadata_at_the_limits_is_accepted() -> None:
    text = "\n".join(f"{'k' * 38}{n:02d}={'v' * METADATA_VALUE_MAX}" for n in range(METADATA_MAX_KEYS))
    assert len(parse_metadata(text)) == METADATA_MAX_KEYS


def test_amount_range_message_names_whose_bounds_they_are() -> None:
    assert parse_amount("120,50", min_cents=ALMA_MIN_CENTS, max_cents=ALMA_MAX_CENTS, range_label="Alma accepts") == (
        12_050,
        None,
    )
    assert parse_amount("250", min_cents=1, max_cents=20_000, range_label="Capturable:") == (
        None,
        "Capturable: €0.01 to €200.00; got €250.00.",
    )
    cents, problem = parse_amount("9" * 20, min_cents=1, max_cents=10**12, range_label="Enter")
    assert cents is None and problem is not None and problem.startswith("Enter €0.01 to ")


def test_amount_that_is_not_a_number_says_so() -> None:
    assert parse_amount("lots", min_cents=1, max_cents=100, range_label="Enter") == (None, "`lots` is not a number.")


def test_a_form_with_a_key_of_its_own_refuses_it_and_keeps_room_for_it() -> None:
    def parse(text: str) -> tuple[tuple[str, str], ...]:
        return parse_metadata(text, max_keys=49, reserved=("own",), reserved_why="the form sets it.")

    with pytest.raises(MetadataError, match="Line 2: `own` is reserved: the form sets it."):
        parse("a=1\nown=mine")
    with pytest.raises(MetadataError, match=re.escape("At most 49 keys (Stripe allows 50; the others are")):
        parse("\n".join(f"k{n}=v" for n in range(50)))
    assert len(parse("\n".join(f"k{n}=v" for n in range(49)))) == 49


def test_description_within_stripe_s_limit() -> None:
    assert parse_description("  QA basket ") == ("QA basket", None)
    assert parse_description("   ") == (None, None)
    assert parse_description("d" * DESCRIPTION_MAX) == ("d" * DESCRIPTION_MAX, None)
    assert parse_description("d" * 22_000) == (None, "At most 5,000 characters (Stripe's limit); this has 22,000.")


def test_min_above_max_is_a_message_not_an_empty_result() -> None:
    assert amount_range_problem(2_000, 1_000) == "Max €10.00 is below Min €20.00: no amount is in that range."
    assert amount_range_problem(1_000, 1_000) is None
    assert amount_range_problem(None, 1_000) is None and amount_range_problem(5, None) is None
