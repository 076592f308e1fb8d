"""What the forms accept: EUR amounts and Stripe metadata typed by a person, turned into values or into a
message meant for that person. Streamlit-free, so the rules are tested without a page."""

from __future__ import annotations

import re
from collections.abc import Collection

from dashboard.money import AmountError, format_eur, parse_eur
from dashboard.plain_text import literal

# Stripe's metadata limits: 50 keys, key up to 40 characters (no square brackets), value up to 500.
METADATA_MAX_KEYS = 50
METADATA_VALUE_MAX = 500
# Stripe's OpenAPI spec caps a PaymentIntent's description, like its other free strings, at 5,000 characters.
DESCRIPTION_MAX = 5_000
_METADATA_KEY = re.compile(r"^[^\[\]]{1,40}$")


class MetadataError(ValueError):
    """Metadata text that Stripe would refuse; the message is meant for the user."""


def parse_metadata(
    text: str, *, max_keys: int = METADATA_MAX_KEYS, reserved: Collection[str] = (), reserved_why: str = ""
) -> tuple[tuple[str, str], ...]:
    """'key=value' lines (blank lines ignored) -> sorted pairs, checked against Stripe's limits. A form that
    adds keys of its own passes them as `reserved` (refused, with `reserved_why`) and lowers `max_keys`."""
    pairs: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise MetadataError(f"Line {number}: write key=value.")
        if not _METADATA_KEY.match(key):
            raise MetadataError(f"Line {number}: keys are 1–40 characters without square brackets.")
        if len(value) > METADATA_VALUE_MAX:
            raise MetadataError(f"Line {number}: values are at most {METADATA_VALUE_MAX} characters.")
        if key in pairs:
            raise MetadataError(f"Line {number}: the key {literal(key)} appears twice.")
        if key in reserved:
            raise MetadataError(f"Line {number}: {literal(key)} is reserved: {reserved_why}")
        pairs[key] = value
    if len(pairs) > max_keys:
        added = (
            f" (Stripe allows {METADATA_MAX_KEYS}; the others are this form's own)"
            if max_keys < METADATA_MAX_KEYS
            else ""
        )
        raise MetadataError(f"At most {max_keys} keys{added}; got {len(pairs)}.")
    return tuple(sorted(pairs.items()))


def parse_amount(text: str, *, min_cents: int, max_cents: int, range_label: str) -> tuple[int | None, str | None]:
    """(cents, None) or (None, message for the user). `range_label` says whose bounds these are ("Alma
    accepts", "Capturable:", …): no default, so a bound that is not Alma's is never called Alma's."""
    try:
        return parse_eur(text, min_cents=min_cents, max_cents=max_cents, range_label=range_label), None
    except AmountError as error:
        return None, str(error)


def parse_description(text: str) -> tuple[str | None, str | None]:
    """(description or None when blank, None) or (None, message for the user): Stripe's length limit."""
    description = (text or "").strip()
    if len(description) > DESCRIPTION_MAX:
        return None, f"At most {DESCRIPTION_MAX:,} characters (Stripe's limit); this has {len(description):,}."
    return description or None, None


def amount_range_problem(min_cents: int | None, max_cents: int | None) -> str | None:
    """A message when a Min above a Max would match nothing; None when the range is fine or open."""
    if min_cents is not None and max_cents is not None and min_cents > max_cents:
        return f"Max {format_eur(max_cents)} is below Min {format_eur(min_cents)}: no amount is in that range."
    return None
