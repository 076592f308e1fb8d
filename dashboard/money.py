"""Money is integer cents everywhere; EUR text exists only at the edges (forms in, display out)."""

from __future__ import annotations

import re


class AmountError(ValueError):
    """A user-entered amount that cannot become cents; the message is meant for the user."""


def _sign_whole_rest(cents: int) -> tuple[str, int, int]:
    """-123456 -> ("-", 1234, 56): the sign goes in front of any currency sign, so it is kept apart."""
    whole, rest = divmod(abs(int(cents)), 100)
    return ("-" if cents < 0 else ""), whole, rest


def format_eur(cents: int) -> str:
    sign, whole, rest = _sign_whole_rest(cents)
    return f"{sign}€{whole:,}.{rest:02d}"


def cents_to_decimal_text(cents: int) -> str:
    """Plain "1234.56" for CSV exports (no currency sign, no thousands separator)."""
    sign, whole, rest = _sign_whole_rest(cents)
    return f"{sign}{whole}.{rest:02d}"


# Digits are ASCII only (str.isdigit and \d accept other scripts); one decimal separator, dot or comma.
_AMOUNT = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]+)(?:[.,](?P<fraction>[0-9]*))?", re.ASCII)
_IGNORED = re.compile(r"[\s€]")  # "€ 1 200" as people type it; \s also takes no-break and thin spaces
_MAX_WHOLE_DIGITS = 15  # past this no range we use can hold the amount; keeps int() on sane input


def parse_eur(text: str, *, min_cents: int, max_cents: int, range_label: str = "Alma accepts") -> int:
    """'120', '120.5', '120,50', '€ 1 200' -> cents. Raises AmountError with a user-facing message."""
    shown = (text or "").strip()
    cleaned = _IGNORED.sub("", shown)
    if not cleaned:
        raise AmountError("Enter an amount in EUR.")
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        raise AmountError(f"“{shown}” is not a number.")
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > 2:
        raise AmountError("Use at most 2 decimals (whole cents).")
    whole = match["whole"].lstrip("0") or "0"
    in_range = f"{range_label} {format_eur(min_cents)} to {format_eur(max_cents)}"
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise AmountError(f"{in_range}.")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if match["sign"] or cents == 0:
        raise AmountError("The amount must be greater than zero.")
    if cents < min_cents or cents > max_cents:
        raise AmountError(f"{in_range}; got {format_eur(cents)}.")
    return cents
