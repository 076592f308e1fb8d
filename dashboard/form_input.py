"""What the forms accept: EUR amounts and Stripe metadata typed by a person, turned into values or into a
message meant for that person. Streamlit-free, so the rules are tested without a page."""

from __future__ import annotations

import re

from dashboard.money import AmountError, parse_eur

# Stripe's metadata limits: 50 keys, key up to 40 characters (no square brackets), value up to 500.
METADATA_MAX_KEYS = 50
METADATA_VALUE_MAX = 500
_METADATA_KEY = re.compile(r"^[^\[\]]{1,40}$")


class MetadataError(ValueError):
    """Metadata text that Stripe would refuse; the message is meant for the user."""


def parse_metadata(text: str) -> tuple[tuple[str, str], ...]:
    """'key=value' lines (blank lines ignored) -> sorted pairs, checked against Stripe's limits."""
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
            raise MetadataError(f"Line {number}: the key “{key}” appears twice.")
        pairs[key] = value
    if len(pairs) > METADATA_MAX_KEYS:
        raise MetadataError(f"At most {METADATA_MAX_KEYS} keys.")
    return tuple(sorted(pairs.items()))


def parse_amount(text: str, *, min_cents: int, max_cents: int, range_label: str) -> tuple[int | None, str | None]:
    """(cents, None) or (None, message for the user). `range_label` says whose bounds these are ("Alma
    accepts", "Capturable:", …): no default, so a bound that is not Alma's is never called Alma's."""
    try:
        return parse_eur(text, min_cents=min_cents, max_cents=max_cents, range_label=range_label), None
    except AmountError as error:
        return None, str(error)
