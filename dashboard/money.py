"""Money is integer cents everywhere; EUR text exists only at the edges (forms in, display out)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation


class AmountError(ValueError):
    """A user-entered amount that cannot become cents; the message is meant for the user."""


def format_eur(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}€{whole:,}.{rest:02d}"


def cents_to_decimal_text(cents: int) -> str:
    """Plain "1234.56" for CSV exports (no currency sign, no thousands separator)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{rest:02d}"


def parse_eur(text: str, *, min_cents: int, max_cents: int) -> int:
    """'120', '120.5', '120,50' -> cents. Raises AmountError with a user-facing message."""
    cleaned = (text or "").strip().replace("€", "").replace(" ", "").replace(",", ".")
    if not cleaned:
        raise AmountError("Enter an amount in EUR.")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"“{text.strip()}” is not a number.") from None
    if not value.is_finite():
        raise AmountError(f"“{text.strip()}” is not a number.")
    if value <= 0:
        raise AmountError("The amount must be greater than zero.")
    if value != value.quantize(Decimal("0.01")):
        raise AmountError("Use at most 2 decimals (whole cents).")
    cents = int(value * 100)
    if cents < min_cents or cents > max_cents:
        raise AmountError(
            f"Alma accepts {format_eur(min_cents)} to {format_eur(max_cents)}; got {format_eur(cents)}."
        )
    return cents
