"""Test lab's rules: its intents are those with its exact metadata pair; the tester's keys leave room for it."""

from __future__ import annotations

import pytest

from dashboard.form_input import MetadataError
from dashboard.lab import TEST_LAB_TAG, TESTER_MAX_KEYS, is_test_lab_intent, lab_metadata, tagged


@pytest.mark.parametrize(
    ("metadata", "ours"),
    [
        ((TEST_LAB_TAG,), True),
        ((("order", "1"), TEST_LAB_TAG), True),
        ((("note", "alma_ops_source=test_lab"),), False),  # the text, not the key
        ((("x_alma_ops_source", "test_lab"),), False),
        ((("alma_ops_source", "test_lab_2"),), False),
        ((), False),
    ],
)
def test_an_intent_is_the_lab_s_by_its_exact_metadata_pair(metadata: tuple[tuple[str, str], ...], ours: bool) -> None:
    assert is_test_lab_intent(metadata) is ours


def test_the_tester_cannot_set_the_tag_key() -> None:
    """Was silently replaced by the tag."""
    with pytest.raises(MetadataError, match="`alma_ops_source` is reserved: Test lab adds alma_ops_source=test_lab"):
        lab_metadata("alma_ops_source=mine")


def test_the_tester_s_keys_and_the_tag_stay_within_stripe_s_fifty() -> None:
    """Was 50 keys plus the tag: 51, refused by the API at the top of the page instead of at the field."""
    assert TESTER_MAX_KEYS == 49
    forty_nine = lab_metadata("\n".join(f"k{n}=v" for n in range(49)))
    assert len(tagged(forty_nine)) == 50
    with pytest.raises(MetadataError, match="At most 49 keys"):
        lab_metadata("\n".join(f"k{n}=v" for n in range(50)))
