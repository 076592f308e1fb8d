"""Money is integer cents everywhere; EUR text exists only at the edges (forms in, display out)."""

from __future__ import annotations

import re

from dashboard.plain_text import literal


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


# Stripe's ceiling on any amount: "up to eight digits" of minor units.
STRIPE_MAX_AMOUNT_CENTS = 99_999_999

# Digits are ASCII only (str.isdigit and \d accept other scripts). Groups of digits between separators: a dot,
# a comma, or a space (any kind: \s also takes no-break and thin spaces), which only ever groups thousands.
_NUMBER = re.compile(r"(?P<sign>-?)(?P<body>[0-9]+(?:[., ][0-9]+)*(?P<trailing>[.,])?)", re.ASCII)
_GROUPS = re.compile(r"[., ]")
_MAX_WHOLE_DIGITS = 15  # past this no range we use can hold the amount; keeps int() on sane input


def _ambiguity(shown: str, whole: str, fraction: str) -> AmountError:
    """'1,000': one separator before exactly three digits reads as thousands or as decimals; both readings."""
    as_thousands = format_eur(int(whole + fraction) * 100)
    readings = f"type {whole}{fraction} for {as_thousands}"
    if fraction.rstrip("0")[2:]:  # three significant decimals: not whole cents either way
        as_decimal = f"€{whole}.{fraction}"
    else:
        as_decimal = format_eur(int(whole) * 100 + int(fraction[:2]))
        readings += f" or {whole}.{fraction[:2]} for {as_decimal}"
    return AmountError(f"{literal(shown)} could be {as_thousands} or {as_decimal}: {readings}.")


def _decimal_mark(body: str) -> str | None:
    """Which of the dots and commas in `body` marks decimals; None when all of them group thousands. The last
    one marks decimals if it is the only one of its kind and cannot be grouping thousands: other separators
    group ("1 000,50", "1.000,50"), or it is not followed by three digits, or a thousands group could not
    precede it ("0,500", "1234,567"). "1,000" and "50.000" could be either: refused, with both readings."""
    marks = [char for char in body if not char.isdigit()]
    last = next((mark for mark in reversed(marks) if mark != " "), None)
    if last is None or marks.count(last) > 1:
        return None
    whole, fraction = body.rsplit(last, 1)
    if set(marks) != {last} or len(fraction) != 3 or whole.startswith("0") or len(whole) > 3:
        return last
    raise _ambiguity(body, whole, fraction)


def _whole_and_fraction(body: str, trailing: str | None) -> tuple[str, str]:
    """'1 000,50' -> ('1000', '50'); raises AmountError for separators that make no number."""
    decimal_mark = trailing or _decimal_mark(body)
    whole, fraction = body.rsplit(decimal_mark, 1) if decimal_mark and not trailing else (body, "")
    groups = _GROUPS.split(whole)
    grouping = {char for char in whole if not char.isdigit()}
    if len(grouping) > 1 or decimal_mark in grouping:
        raise AmountError(f"{literal(body)} is not a number: use one decimal mark and one kind of thousands mark.")
    if len(groups) > 1 and (len(groups[0]) > 3 or any(len(group) != 3 for group in groups[1:])):
        raise AmountError(f"{literal(body)} is not a number: thousands are grouped by three digits (1 000 or 1,000).")
    return "".join(groups), fraction


def parse_eur(text: str, *, min_cents: int, max_cents: int, range_label: str = "Alma accepts") -> int:
    """'120', '120.5', '120,50', '€ 1 200', '1,000.50', '1 000,50' -> cents. A separator that could mark
    thousands or decimals ('1,000', '50.000') is refused, never guessed. Raises AmountError with a message for
    the user (Markdown-safe: the typed text is quoted with plain_text.literal)."""
    shown = (text or "").strip()
    cleaned = re.sub(r"\s+", " ", shown.replace("€", "")).strip()
    if not cleaned:
        raise AmountError("Enter an amount in EUR.")
    match = _NUMBER.fullmatch(cleaned)
    if match is None:
        raise AmountError(f"{literal(shown)} is not a number.")
    whole, fraction = _whole_and_fraction(match["body"].rstrip(".,"), match["trailing"])
    fraction = fraction.rstrip("0")
    if len(fraction) > 2:
        raise AmountError("Use at most 2 decimals (whole cents).")
    whole = whole.lstrip("0") or "0"
    in_range = f"{range_label} {format_eur(min_cents)} to {format_eur(max_cents)}"
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise AmountError(f"{in_range}.")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if match["sign"] or cents == 0:
        raise AmountError("The amount must be greater than zero.")
    if cents < min_cents or cents > max_cents:
        raise AmountError(f"{in_range}; got {format_eur(cents)}.")
    return cents


# --- money actions, said in words before they are sent --------------------------------------------------------


def capture_confirmation(capture_cents: int, capturable_cents: int) -> str:
    """What a capture does to the held amount, for the user to confirm before it is sent."""
    if capture_cents >= capturable_cents:
        return f"Capture {format_eur(capture_cents)}, the whole amount held."
    released = format_eur(capturable_cents - capture_cents)
    return (
        f"Capture {format_eur(capture_cents)} of {format_eur(capturable_cents)}; "
        f"the remaining {released} is released for good."
    )


def release_confirmation(capturable_cents: int) -> str:
    """What canceling an authorised (held) intent does, for the user to confirm before it is sent."""
    return (
        f"Cancel and release the {format_eur(capturable_cents)} held: the customer is not charged, "
        "and nothing can be captured afterwards."
    )


def refund_confirmation(refund_cents: int, refundable_cents: int) -> str:
    """What a refund sends back, in words, for the operator to confirm before it is sent."""
    if refund_cents >= refundable_cents:
        return f"Refund {format_eur(refund_cents)} to the customer: everything left on this payment."
    return (
        f"Refund {format_eur(refund_cents)} of the {format_eur(refundable_cents)} left on this payment; "
        f"{format_eur(refundable_cents - refund_cents)} stays refundable."
    )
