from __future__ import annotations

import pytest

from dashboard.money import (
    AmountError,
    capture_confirmation,
    cents_to_decimal_text,
    format_eur,
    parse_eur,
    release_confirmation,
)
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
        ("0120", 12_000),
        ("120.", 12_000),
        # A thousands separator where it cannot be read otherwise.
        ("1 000,50", 100_050),
        ("1,000.50", 100_050),
        ("1.000,50", 100_050),
        ("1\u202f000,50", 100_050),  # a narrow no-break space, as a French locale writes it
        ("1 000.000", 100_000),  # spaced thousands: the dot can only mark decimals
        ("1,000.", 100_000),
        ("0,500", 50),  # no thousands group follows a leading zero
        ("1234,500", 123_450),  # nor a four-digit one
        ("2,000,000", 200_000_000),  # a mark used twice groups thousands
    ],
)
def test_parse_eur(text: str, cents: int) -> None:
    assert parse_eur(text, min_cents=1, max_cents=10**12) == cents


def test_parse_is_exact_where_floats_are_not() -> None:
    assert parse_eur("0.29", min_cents=1, max_cents=100) == 29  # float(0.29) * 100 == 28.999...


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter an amount"),
        ("abc", "is not a number"),
        ("nan", "is not a number"),
        ("-3", "greater than zero"),
        ("10.1234", "at most 2 decimals"),
        ("49.99", "Alma accepts €50.00 to €5,000.00; got €49.99"),
        ("5000.01", "got €5,000.01"),
        ("1e3", "is not a number"),  # Decimal would read 1,000
        ("1_000", "is not a number"),
        ("１２０", "is not a number"),  # full-width digits
        ("9" * 40, "Alma accepts €50.00 to €5,000.00"),  # was a raw decimal.InvalidOperation
        ("1e999999", "is not a number"),
        ("0", "greater than zero"),
        ("1.2.3", "is not a number"),
        ("10 00", "grouped by three digits"),
        ("1,00.50", "grouped by three digits"),
        ("1,000,00", "grouped by three digits"),
        ("1.000.000.5", "grouped by three digits"),
        ("1,000.000,5", "one decimal mark"),
        ("٥٠٠٠", "is not a number"),  # Arabic-Indic digits
    ],
)
def test_parse_refuses_with_a_message_for_the_user(text: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        parse_eur(text, **LIMITS)


def test_a_range_that_is_not_alma_s_says_so() -> None:
    with pytest.raises(AmountError, match="Capturable: €0.01 to €210.00; got €300.00"):
        parse_eur("300", min_cents=1, max_cents=21_000, range_label="Capturable:")


@pytest.mark.parametrize(
    ("text", "readings"),
    [
        ("1,000", "`1,000` could be €1,000.00 or €1.00: type 1000 for €1,000.00 or 1.00 for €1.00."),
        ("50.000", "`50.000` could be €50,000.00 or €50.00: type 50000 for €50,000.00 or 50.00 for €50.00."),
        ("50,000", "`50,000` could be €50,000.00 or €50.00"),
        ("120.500", "`120.500` could be €120,500.00 or €120.50"),
        ("1,005", "`1,005` could be €1,005.00 or €1.005: type 1005 for €1,005.00."),
        ("€ 2.500", "`2.500` could be €2,500.00 or €2.50"),
    ],
)
def test_an_amount_that_reads_two_ways_is_refused_with_both_readings(text: str, readings: str) -> None:
    """Was read as decimals: '50,000' created a €50.00 intent and a capture of '1,000' captured €1.00."""
    with pytest.raises(AmountError) as refused:
        parse_eur(text, min_cents=1, max_cents=10**12)
    assert str(refused.value).startswith(readings)


def test_the_typed_text_is_quoted_as_text_in_the_message() -> None:
    with pytest.raises(AmountError) as refused:
        parse_eur("![x](http://h/t.png) `", **LIMITS)
    assert str(refused.value) == "`` ![x](http://h/t.png) ` `` is not a number."


def test_confirmations_say_the_amounts_in_words() -> None:
    assert capture_confirmation(100_000, 120_000) == (
        "Capture €1,000.00 of €1,200.00; the remaining €200.00 is released for good."
    )
    assert capture_confirmation(120_000, 120_000) == "Capture €1,200.00, the whole amount held."
    assert release_confirmation(9_000).startswith("Cancel and release the €90.00 held")
