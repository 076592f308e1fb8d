"""Test lab's rules: its intents are those with its exact metadata pair; the tester's keys leave room for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import actions
from dashboard.access import Role, anonymous
from dashboard.actions import IntentForm
from dashboard.domain import TEST_LAB_TAG, is_test_lab_intent
from dashboard.form_input import MetadataError
from dashboard.gateway import CreateIntentRequest
from dashboard.lab import (
    TAG_TEXT,
    TESTER_MAX_KEYS,
    lab_metadata,
    recent_test_intents,
    tagged,
)
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.sync import AlmaSync
from dashboard.wiring import build_services
from tests.conftest import SandboxServer


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


def test_recent_test_intents_are_the_tagged_ones_newest_first_plus_answers_not_yet_synced(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    services = build_services(
        Settings(db=str(tmp_path / "alma.sqlite3"), sandbox_url=sandbox.base_url), may_start_sandbox=False
    )
    try:
        gateway, operator = services.gateway, anonymous(Role.OPERATOR)
        ours = []
        for n in range(3):
            form = IntentForm(amount=10_000 + n, capture_method="automatic", description=None, metadata=())
            ours.append(actions.create_test_intent(services, operator, form, SingleSubmission(n)).intent)
            sandbox.advance(60)  # distinct creation times
        says_the_tag = CreateIntentRequest(12_000, "automatic", f"about {TAG_TEXT}", (), "http://localhost:8501/return")
        impostor = gateway.create_alma_intent(says_the_tag, "create-impostor").intent  # mentions it, not tagged
        AlmaSync.for_services(services).sync_once()
        late_form = IntentForm(amount=20_000, capture_method="manual", description=None, metadata=())
        late = actions.create_test_intent(services, operator, late_form, SingleSubmission(9)).intent  # not synced

        recent = recent_test_intents(services.store.intents_frame(), [ours[0], late], AUTH_WINDOW_SECONDS, limit=3)
        assert recent["id"].tolist() == [late.id, ours[2].id, ours[1].id]
        everything = recent_test_intents(services.store.intents_frame(), [late], AUTH_WINDOW_SECONDS)
        assert sorted(everything["id"]) == sorted([late.id, *(i.id for i in ours)])
        assert impostor.id in set(services.store.intents_frame()["id"])  # stored, yet not the lab's
    finally:
        services.close()


class SingleSubmission:
    def __init__(self, n: int) -> None:
        self.n = n

    def current(self, form: str) -> str:
        return f"{form}-{self.n}"

    def renew(self, form: str) -> None:
        raise AssertionError("a successful create keeps its submission")
