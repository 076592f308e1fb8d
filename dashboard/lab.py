"""Test lab's rules, apart from its page: how its intents are tagged and recognised, what its form accepts,
and which intents its "Recent test intents" list shows.

An intent is the lab's when its metadata holds exactly domain.TEST_LAB_TAG (key and value): text that merely reads
"alma_ops_source=test_lab" in a description or in another key's value does not make it one. The tag is the
lab's own, so a tester cannot set that key (refused at the field rather than silently replaced), and the
tester's keys leave room for it within Stripe's 50.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from dashboard.domain import TEST_LAB_TAG, AlmaIntent
from dashboard.form_input import METADATA_MAX_KEYS, parse_metadata
from dashboard.intent_frame import frame_from_intents

TAG_TEXT = "=".join(TEST_LAB_TAG)  # how the tag reads in intent_frame.metadata_text: narrows a search
TESTER_MAX_KEYS = METADATA_MAX_KEYS - 1
RECENT_LIMIT = 10
_TAG_IS_OURS = f"Test lab adds {TAG_TEXT} to every intent it creates; use another key."


def lab_metadata(text: str) -> tuple[tuple[str, str], ...]:
    """The tester's 'key=value' lines, within what Stripe accepts once the tag is added (MetadataError)."""
    return parse_metadata(text, max_keys=TESTER_MAX_KEYS, reserved=(TEST_LAB_TAG[0],), reserved_why=_TAG_IS_OURS)


def tagged(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The metadata sent to Stripe: the tester's pairs and the tag."""
    return (*metadata, TEST_LAB_TAG)


def recent_test_intents(
    stored: pd.DataFrame,
    answers: Iterable[AlmaIntent],
    auth_window_seconds: int,
    limit: int = RECENT_LIMIT,
) -> pd.DataFrame:
    """The lab's newest intents, newest first: the stored ones (`stored`, the store's newest tagged rows) and,
    for those the sync has not brought in yet, the gateway's own answers from this session."""
    tagged_rows = stored[stored["test_lab"]].sort_values("created", ascending=False).head(limit)
    known = set(stored["id"])
    unsynced = [intent for intent in answers if intent.id not in known]
    recent = pd.concat([tagged_rows, frame_from_intents(unsynced, auth_window_seconds)], ignore_index=True)
    return recent.sort_values("created", ascending=False).head(limit)
