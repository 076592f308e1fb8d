"""The action layer against the sandbox over HTTP: who may act, one object per submission, when a form starts a
new submission after a failure, and the audit row and log line every attempt leaves, whatever its outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dashboard import actions, audit
from dashboard.access import Principal, Role, anonymous
from dashboard.actions import ActionRefused, IntentForm
from dashboard.audit import AuditEntry, AuditFilter
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


# --- the audit trail: every attempt is one row and one log line -------------------------------------------

OLGA = Principal("olga@partner.org", "Olga Ops", Role.OPERATOR, signed_in=True)


def trail(services: Services, **wanted: object) -> list[AuditEntry]:
    """Oldest first, as the test made them."""
    return list(reversed(services.store.audit_entries(AuditFilter(**wanted))))  # type: ignore[arg-type]


def test_each_attempt_is_one_row_whatever_its_outcome(services: Services) -> None:
    submissions = CountingSubmissions()
    created = actions.create_test_intent(services, OLGA, ORDER, submissions)
    submissions.renew(actions.CREATE_FORM)
    intent_id = held_intent(services, submissions)  # a second create, authorised by the customer
    actions.capture_intent(services, OLGA, intent_id, 10_000, submissions)
    submissions.renew(actions.INTENT_ACTIONS_FORM)
    with pytest.raises(GatewayError):
        actions.capture_intent(services, OLGA, intent_id, 10_000, submissions)  # already captured
    with pytest.raises(ActionRefused):
        actions.cancel_intent(services, VIEWER, created.intent.id, submissions)
    actions.cancel_intent(services, OLGA, created.intent.id, submissions)
    actions.advance_clock(services, OLGA, 60)

    rows = trail(services)
    assert [(r.who, r.role, r.action, r.outcome) for r in rows] == [
        ("olga@partner.org", "operator", "create_intent", "ok"),
        ("anonymous", "operator", "create_intent", "ok"),  # held_intent acts as the anonymous operator
        ("olga@partner.org", "operator", "capture", "ok"),
        ("olga@partner.org", "operator", "capture", "payment_intent_unexpected_state"),
        ("anonymous", "viewer", "cancel", "refused"),
        ("olga@partner.org", "operator", "cancel", "ok"),
        ("olga@partner.org", "operator", "advance_clock", "ok"),
    ]
    create, _, capture, failed, refused, cancel, clock = rows
    assert (create.intent_id, create.amount) == (created.intent.id, ORDER.amount)
    assert create.idempotency_key and create.idempotency_key.startswith("alma-ops-create_intent-")
    assert (capture.intent_id, capture.amount) == (intent_id, 10_000)
    assert capture.idempotency_key != failed.idempotency_key  # another submission
    assert failed.detail  # Stripe's message is kept
    assert (refused.intent_id, refused.amount, refused.detail) == (
        created.intent.id,
        None,
        "anonymous (Viewer) may not cancel payments here.",
    )
    assert (cancel.amount, cancel.intent_id) == (ORDER.amount, created.intent.id)
    assert (clock.detail, clock.intent_id) == ("+60 s", None)
    assert all(abs(r.at - audit.CLOCK.now()) < 600 for r in rows)  # the machine's time, not the sandbox's


def test_a_lost_connection_is_recorded_as_no_answer(services: Services) -> None:
    submissions = CountingSubmissions()
    intent_id = held_intent(services, submissions)
    unreachable = replace(services, gateway=StripeGateway(services.settings, api_base="http://127.0.0.1:9"))
    with pytest.raises(GatewayUnavailable):
        actions.capture_intent(unreachable, OLGA, intent_id, 5_000, submissions)

    [row] = trail(services, actions=(audit.CAPTURE,))
    assert (row.outcome, row.intent_id, row.amount) == ("no_answer", intent_id, 5_000)


def test_a_live_key_is_refused_and_recorded(sandbox: SandboxServer, services: Services) -> None:
    live = replace(services, settings=replace(services.settings, secret_key="sk_live_fake_for_tests_9876"))
    with pytest.raises(ActionRefused):
        actions.capture_intent(live, replace(OLGA, role=Role.ADMIN), "pi_live", 1_000, CountingSubmissions())
    [row] = trail(services)
    assert (row.role, row.outcome, row.intent_id) == ("admin", "refused", "pi_live")


def test_each_attempt_is_one_log_line_without_secrets(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dashboard.audit")
    submissions = CountingSubmissions()
    created = actions.create_test_intent(services, OLGA, ORDER, submissions)
    with pytest.raises(ActionRefused):
        actions.advance_clock(services, VIEWER, 60)

    lines = [r.getMessage() for r in caplog.records if r.name == "dashboard.audit"]
    assert len(lines) == 2
    assert lines[0].startswith(
        f"audit who=olga@partner.org role=operator action=create_intent intent={created.intent.id}"
    )
    assert lines[1].endswith("outcome=refused")
    assert not any("secret" in line or "sk_test" in line for line in lines)


def test_filters(services: Services) -> None:
    submissions = CountingSubmissions()
    actions.create_test_intent(services, OLGA, ORDER, submissions)
    with pytest.raises(ActionRefused):
        actions.advance_clock(services, VIEWER, 60)
    with pytest.raises(GatewayError):
        actions.cancel_intent(services, OLGA, "pi_does_not_exist", submissions)

    assert [r.outcome for r in trail(services, outcomes=(audit.FAILED,))] == ["resource_missing"]
    assert [r.action for r in trail(services, outcomes=(audit.OK, audit.REFUSED))] == ["create_intent", "advance_clock"]
    assert [r.action for r in trail(services, who="anonymous")] == ["advance_clock"]
    assert [r.action for r in trail(services, actions=(audit.CANCEL, audit.CREATE_INTENT))] == [
        "create_intent",
        "cancel",
    ]
    now = audit.CLOCK.now()
    assert len(trail(services, since=now - 600, until=now + 600)) == 3
    assert trail(services, until=now - 600) == []
    assert services.store.audit_people() == ["anonymous", "olga@partner.org"]
