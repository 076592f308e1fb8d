"""Test lab's rules, apart from its page: how its intents are tagged and recognised, and what its form accepts.

An intent is the lab's when its metadata holds exactly TEST_LAB_TAG (key and value): text that merely reads
"alma_ops_source=test_lab" in a description or in another key's value does not make it one. The tag is the
lab's own, so a tester cannot set that key (refused at the field rather than silently replaced), and the
tester's keys leave room for it within Stripe's 50.
"""

from __future__ import annotations

from collections.abc import Iterable

from dashboard.form_input import METADATA_MAX_KEYS, parse_metadata

TEST_LAB_TAG = ("alma_ops_source", "test_lab")
TAG_TEXT = "=".join(TEST_LAB_TAG)  # how the tag reads in intent_frame.metadata_text: narrows a search
TESTER_MAX_KEYS = METADATA_MAX_KEYS - 1
_TAG_IS_OURS = f"Test lab adds {TAG_TEXT} to every intent it creates; use another key."


def is_test_lab_intent(metadata: Iterable[tuple[str, str]]) -> bool:
    return TEST_LAB_TAG in tuple(metadata)


def lab_metadata(text: str) -> tuple[tuple[str, str], ...]:
    """The tester's 'key=value' lines, within what Stripe accepts once the tag is added (MetadataError)."""
    return parse_metadata(text, max_keys=TESTER_MAX_KEYS, reserved=(TEST_LAB_TAG[0],), reserved_why=_TAG_IS_OURS)


def tagged(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The metadata sent to Stripe: the tester's pairs and the tag."""
    return (*metadata, TEST_LAB_TAG)
