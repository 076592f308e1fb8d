"""Form input rules: Stripe's metadata limits and EUR amounts with whose range they are."""

from __future__ import annotations

import pytest

from dashboard.form_input import METADATA_MAX_KEYS, METADATA_VALUE_MAX, MetadataError, parse_amount, parse_metadata
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
        ("a=1\na=2", "Line 2: the key “a” appears twice."),
        ("\n".join(f"k{n}=v" for n in range(METADATA_MAX_KEYS + 1)), f"At most {METADATA_MAX_KEYS} keys."),
    ],
)
def test_metadata_stripe_would_refuse_is_explained(text: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message.replace("[", r"\[")):
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
    assert parse_amount("lots", min_cents=1, max_cents=100, range_label="Enter") == (None, "“lots” is not a number.")
