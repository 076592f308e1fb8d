from __future__ import annotations

import pytest

from dashboard.money import AmountError, cents_to_decimal_text, format_eur, parse_eur
from dashboard.settings import ALMA_MAX_CENTS, ALMA_MIN_CENTS

LIMITS = {"min_cents": ALMA_MIN_CENTS, "max_cents": ALMA_MAX_CENTS}


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "€0.00"), (5, "€0.05"), (12_050, "€120.50"), (123_456_789, "€1,234,567.89"), (-1_999, "-€19.99")],
)
def test_format_eur(cents: int, text: str) -> None:
    assert format_eur(cents) == text


@pytest.mark.parametrize(("cents", "text"), [(0, "0.00"), (123_456, "1234.56"), (-5, "-0.05")])
def test_decimal_text_for_exports(cents: int, text: str) -> None:
    assert cents_to_decimal_text(cents) == text


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("120", 12_000),
        ("120.5", 12_050),
        ("120,50", 12_050),
        (" € 1 200 ", 120_000),
        ("50", 5_000),
        ("5000", 500_000),
        ("120.500", 12_050),
        ("0120", 12_000),
        ("120.", 12_000),
    ],
)
def test_parse_eur(text: str, cents: int) -> None:
    assert parse_eur(text, **LIMITS) == cents


def test_parse_is_exact_where_floats_are_not() -> None:
    assert parse_eur("0.29", min_cents=1, max_cents=100) == 29  # float(0.29) * 100 == 28.999...


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter an amount"),
        ("abc", "is not a number"),
        ("nan", "is not a number"),
        ("-3", "greater than zero"),
        ("10.123", "at most 2 decimals"),
        ("49.99", "Alma accepts €50.00 to €5,000.00; got €49.99"),
        ("5000.01", "got €5,000.01"),
        ("1e3", "is not a number"),  # Decimal would read 1,000
        ("1_000", "is not a number"),
        ("１２０", "is not a number"),  # full-width digits
        ("9" * 40, "Alma accepts €50.00 to €5,000.00"),  # was a raw decimal.InvalidOperation
        ("1e999999", "is not a number"),
        ("0", "greater than zero"),
        ("1.2.3", "is not a number"),
    ],
)
def test_parse_refuses_with_a_message_for_the_user(text: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_eur(text, **LIMITS)


def test_a_range_that_is_not_alma_s_says_so() -> None:
    with pytest.raises(AmountError, match="Capturable: €0.01 to €210.00; got €300.00"):
        parse_eur("300", min_cents=1, max_cents=21_000, range_label="Capturable:")
