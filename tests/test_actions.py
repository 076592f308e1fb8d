"""The action layer against the sandbox over HTTP: who may act, one object per submission, and when a form
starts a new submission after a failure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dashboard import actions
from dashboard.access import Role, anonymous
from dashboard.actions import ActionRefused, IntentForm
from dashboard.domain import TEST_LAB_TAG
from dashboard.gateway import GatewayError, GatewayUnavailable, StripeGateway
from dashboard.settings import Settings
from dashboard.wiring import Services, build_services
from tests.conftest import SandboxServer, answer_alma_page

ADMIN = anonymous(Role.ADMIN)
OPERATOR = anonymous(Role.OPERATOR)
VIEWER = anonymous(Role.VIEWER)
ORDER = IntentForm(amount=12_345, capture_method="manual", description="QA", metadata=(("order", "7"),))


class CountingSubmissions:
    """A form's submission ids as a session keeps them: the current one, renewed on demand."""

    def __init__(self) -> None:
        self.renewals: dict[str, int] = {}

    def current(self, form: str) -> str:
        return f"{form}-{self.renewals.get(form, 0)}"

    def renew(self, form: str) -> None:
        self.renewals[form] = self.renewals.get(form, 0) + 1


@pytest.fixture
def services(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Services]:
    built = build_services(
        Settings(db=str(tmp_path / "alma.sqlite3"), sandbox_url=sandbox.base_url), may_start_sandbox=False
    )
    yield built
    built.close()


def held_intent(services: Services, submissions: CountingSubmissions) -> str:
    created = actions.create_test_intent(services, OPERATOR, ORDER, submissions)
    assert created.redirect_url is not None
    answer_alma_page(created.redirect_url, "authorize")
    return created.intent.id


def test_one_submission_creates_one_tagged_intent(services: Services) -> None:
    submissions = CountingSubmissions()
    first = actions.create_test_intent(services, OPERATOR, ORDER, submissions)
    again = actions.create_test_intent(services, OPERATOR, ORDER, submissions)  # a double click
    assert again.intent.id == first.intent.id
    assert set(first.intent.metadata) == {("order", "7"), TEST_LAB_TAG}
    assert (first.intent.amount, first.intent.capture_method, first.intent.status) == (
        12_345,
        "manual",
        "requires_action",
    )

    corrected = actions.create_test_intent(services, OPERATOR, replace(ORDER, amount=12_346), submissions)
    assert corrected.intent.id != first.intent.id  # the fields are part of the key
    submissions.renew(actions.CREATE_FORM)  # "Create another"
    assert actions.create_test_intent(services, OPERATOR, ORDER, submissions).intent.id != first.intent.id


def test_capture_then_an_answered_error_starts_a_new_submission(services: Services) -> None:
    submissions = CountingSubmissions()
    intent_id = held_intent(services, submissions)
    captured = actions.capture_intent(services, OPERATOR, intent_id, 10_000, submissions)
    assert (captured.status, captured.amount_received) == ("succeeded", 10_000)
    assert submissions.renewals == {}  # a success keeps the key: a double click replays it

    with pytest.raises(GatewayError) as refused:
        actions.cancel_intent(services, OPERATOR, intent_id, submissions)
    assert refused.value.code == "payment_intent_unexpected_state"
    assert submissions.renewals == {actions.INTENT_ACTIONS_FORM: 1}


def test_a_lost_connection_keeps_the_submission_for_the_retry(services: Services, tmp_path: Path) -> None:
    submissions = CountingSubmissions()
    intent_id = held_intent(services, submissions)
    unreachable = replace(services, gateway=StripeGateway(services.settings, api_base="http://127.0.0.1:9"))
    with pytest.raises(GatewayUnavailable):
        actions.cancel_intent(unreachable, OPERATOR, intent_id, submissions)
    assert submissions.renewals == {}
    assert actions.cancel_intent(services, OPERATOR, intent_id, submissions).status == "canceled"


def test_a_viewer_is_refused_before_any_request(services: Services, sandbox: SandboxServer) -> None:
    submissions = CountingSubmissions()
    intent_id = held_intent(services, submissions)
    before = sandbox.request_count()
    for attempt in (
        lambda: actions.create_test_intent(services, VIEWER, ORDER, submissions),
        lambda: actions.cancel_intent(services, VIEWER, intent_id, submissions),
        lambda: actions.capture_intent(services, VIEWER, intent_id, 1_000, submissions),
        lambda: actions.advance_clock(services, VIEWER, 60),
    ):
        with pytest.raises(ActionRefused) as refused:
            attempt()
        assert refused.value.code == "not_permitted"
    assert (
        sandbox.request_count() == before and services.gateway.retrieve_intent(intent_id).status == "requires_capture"
    )


def test_a_live_key_refuses_every_write_for_every_role(sandbox: SandboxServer, tmp_path: Path) -> None:
    live = Settings(secret_key="sk_live_fake_for_tests_9876", api_base=sandbox.base_url, db=str(tmp_path / "a.db"))
    services = build_services(live, may_start_sandbox=False)
    try:
        with pytest.raises(ActionRefused):
            actions.create_test_intent(services, ADMIN, ORDER, CountingSubmissions())
        with pytest.raises(ActionRefused):
            actions.cancel_intent(services, ADMIN, "pi_any", CountingSubmissions())
    finally:
        services.close()
    assert sandbox.request_count() == 0


def test_the_clock_moves_the_sandbox(services: Services, sandbox: SandboxServer) -> None:
    before = sandbox.now()
    assert actions.advance_clock(services, OPERATOR, 61 * 60) >= before + 61 * 60
    assert sandbox.now() >= before + 61 * 60
