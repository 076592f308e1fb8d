"""Every write the dashboard makes, one function each: create (and confirm) a test intent, cancel, capture,
refund, move the local sandbox's clock, and send a test alert notification. Pages call these and only draw the outcome.

Each function takes who acts (access.Principal; anonymous until sign-in is configured) and what they
submitted, checks the person's permission in this mode, derives the idempotency key from the submission,
and applies the retry policy: after an error Stripe answered, the form starts a new submission (Stripe would
replay that error to every retry under the same key); after a lost connection it keeps the key, so a retry
replays whatever the request did instead of acting twice. Failures raise GatewayError (ActionRefused when the
person may not act); the sync brings every effect into the store like any other change.

Every attempt, refused and failed ones included, leaves one audit row and one log line (dashboard/audit.py),
written here so that no write can skip it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Protocol

from dashboard import audit
from dashboard.access import Permission, Principal
from dashboard.domain import AlmaIntent, Refund
from dashboard.gateway import (
    CaptureMethod,
    CreatedIntent,
    CreateIntentRequest,
    GatewayError,
    ReadOnlyModeError,
    RefundRequest,
    submission_idempotency_key,
)
from dashboard.lab import tagged
from dashboard.store.alert_log import NotificationRecord
from dashboard.wiring import Services

# The forms whose submissions key the writes: the create form, and the actions on Test lab's intents.
CREATE_FORM = "create"
INTENT_ACTIONS_FORM = "lab_actions"
REFUND_FORM = "refund"
TEST_NOTIFICATION_FORM = "test_notification"


class ActionRefused(GatewayError):
    """The person may not make this write in this mode: refused before any request is sent."""


class Submissions(Protocol):
    """Where each form's current submission id lives (a session, for pages). Replays of one submission (a
    double click, a rerun) share its id, hence their idempotency key; renew() starts the next submission."""

    def current(self, form: str) -> str: ...

    def renew(self, form: str) -> None: ...


@dataclass(frozen=True)
class IntentForm:
    """What a tester filled in on the create form, already parsed and checked."""

    amount: int  # cents
    capture_method: CaptureMethod
    description: str | None
    metadata: tuple[tuple[str, str], ...]  # the tester's pairs; the Test lab tag is added on the way out


@dataclass
class _Attempt:
    """What an action learns while it acts, for its audit row."""

    amount: int | None = None
    intent_id: str | None = None
    outcome: str = audit.OK  # how it ended when no exception says otherwise
    detail: str | None = None  # replaces the detail given at the start


def _outcome(error: BaseException) -> tuple[str, str]:
    """(outcome, detail) of a write that ended with `error`."""
    if isinstance(error, ActionRefused | ReadOnlyModeError):
        return audit.REFUSED, error.message
    if isinstance(error, GatewayError):
        if error.http_status is None and not error.code:
            return audit.NO_ANSWER, error.message  # no answer: Stripe may or may not have acted
        return error.code or f"http_{error.http_status}", error.message
    if isinstance(error, OSError):  # the local sandbox's clock did not answer
        return audit.NO_ANSWER, str(error)
    return type(error).__name__, ""


@contextmanager
def _audited(
    services: Services,
    who: Principal,
    action: str,
    *,
    intent_id: str | None = None,
    amount: int | None = None,
    idempotency_key: str | None = None,
    detail: str = "",
) -> Iterator[_Attempt]:
    """One audit row and one log line for the write in the block, however it ends; its exception goes on."""
    attempt = _Attempt(amount, intent_id)
    outcome = audit.OK
    try:
        yield attempt
        outcome, detail = attempt.outcome, detail if attempt.detail is None else attempt.detail
    except BaseException as error:
        outcome, detail = _outcome(error)
        raise
    finally:
        role = who.role.value if who.role is not None else audit.NO_ROLE
        entry = audit.AuditEntry(
            at=0,
            who=who.who,
            role=role,
            action=action,
            outcome=outcome,
            intent_id=attempt.intent_id,
            amount=attempt.amount,
            idempotency_key=idempotency_key,
            detail=detail,
        )
        audit.log.info(audit.log_line(entry))  # first: it needs neither the clock nor the store
        services.store.add_audit_entry(dataclasses.replace(entry, at=audit.CLOCK.now()))


def _check(who: Principal, permission: Permission, services: Services, doing: str) -> None:
    if not who.may(permission, services.settings.mode):
        role = who.role.label if who.role is not None else "no role"
        raise ActionRefused(f"{who.display_name} ({role}) may not {doing} here.", code="not_permitted")


def _renewing_after_answered_error(submissions: Submissions, form: str, error: GatewayError) -> GatewayError:
    """Stripe answered (it has an http_status): that error is stored against the key, so a new submission.
    No answer (connection lost): the request may have gone through, so the key stays for the retry."""
    if error.http_status is not None:
        submissions.renew(form)
    return error


def create_test_intent(
    services: Services, who: Principal, submission: IntentForm, submissions: Submissions
) -> CreatedIntent:
    """Create and confirm an Alma intent tagged as Test lab's; the customer's approve page is its redirect.
    The same submission sent twice creates one intent (the fields are in the key, so a corrected form is a
    new request)."""
    key = submission_idempotency_key("create_intent", submissions.current(CREATE_FORM), **asdict(submission))
    with _audited(services, who, audit.CREATE_INTENT, amount=submission.amount, idempotency_key=key) as attempt:
        _check(who, Permission.TEST_LAB, services, "create test intents")
        request = CreateIntentRequest(
            amount=submission.amount,
            capture_method=submission.capture_method,
            description=submission.description,
            metadata=tagged(submission.metadata),
            return_url=services.settings.return_url,
        )
        created = services.gateway.create_alma_intent(request, key)
        attempt.intent_id = created.intent.id
        return created


def cancel_intent(
    services: Services, who: Principal, intent_id: str, submissions: Submissions, *, amount: int | None = None
) -> AlmaIntent:
    """`amount`: what the person was shown as released (held or asked), for the audit row; else the intent's."""
    key = submission_idempotency_key("cancel", submissions.current(INTENT_ACTIONS_FORM), intent_id=intent_id)
    with _audited(services, who, audit.CANCEL, intent_id=intent_id, amount=amount, idempotency_key=key) as attempt:
        _check(who, Permission.ACT_ON_INTENTS, services, "cancel payments")
        try:
            canceled = services.gateway.cancel_intent(intent_id, key)
        except GatewayError as error:
            raise _renewing_after_answered_error(submissions, INTENT_ACTIONS_FORM, error) from None
        attempt.amount = canceled.amount if amount is None else amount
        return canceled


def capture_intent(
    services: Services, who: Principal, intent_id: str, amount: int, submissions: Submissions
) -> AlmaIntent:
    """Capture `amount` cents (at most what is capturable; the rest is released)."""
    current = submissions.current(INTENT_ACTIONS_FORM)
    key = submission_idempotency_key("capture", current, intent_id=intent_id, amount=amount)
    with _audited(services, who, audit.CAPTURE, intent_id=intent_id, amount=amount, idempotency_key=key):
        _check(who, Permission.ACT_ON_INTENTS, services, "capture payments")
        try:
            return services.gateway.capture_intent(intent_id, amount, key)
        except GatewayError as error:
            raise _renewing_after_answered_error(submissions, INTENT_ACTIONS_FORM, error) from None


def refund_intent(services: Services, who: Principal, request: RefundRequest, submissions: Submissions) -> Refund:
    """Refund `request.amount` cents (None: all that is left) of a succeeded intent. The same submission sent
    twice refunds once (the amount and reason are in the key, so a corrected form is a new request)."""
    key = submission_idempotency_key("refund", submissions.current(REFUND_FORM), **asdict(request))
    reason = f"reason {request.reason}" if request.reason else ""
    with _audited(
        services,
        who,
        audit.REFUND,
        intent_id=request.intent_id,
        amount=request.amount,
        idempotency_key=key,
        detail=reason,
    ) as attempt:
        _check(who, Permission.ACT_ON_INTENTS, services, "refund payments")
        try:
            refund = services.gateway.create_refund(request, key)
        except GatewayError as error:
            raise _renewing_after_answered_error(submissions, REFUND_FORM, error) from None
        attempt.amount = refund.amount  # "all that is left" said in cents
        return refund


def advance_clock(services: Services, who: Principal, seconds: int) -> int:
    """Move the local sandbox's clock forward; its new time. OSError when the sandbox does not answer."""
    with _audited(services, who, audit.ADVANCE_CLOCK, detail=f"+{seconds} s"):
        _check(who, Permission.ADVANCE_CLOCK, services, "move the sandbox clock")
        if services.sandbox is None:
            raise ActionRefused("Only the local sandbox has a clock to move.", code="not_permitted")
        return services.sandbox.advance(seconds)


def send_test_notification(
    services: Services, who: Principal, submissions: Submissions, now: int
) -> NotificationRecord:
    """A test notification to every alert target, dated `now` (the pages' clock, as the rules' notifications
    are); its history row says how delivery went (a failed one is an audit row with outcome `failed`, not an
    exception: nothing was wrong with the request). The same submission sent twice sends once; the next
    submission sends again."""
    key = submission_idempotency_key("test_notification", submissions.current(TEST_NOTIFICATION_FORM))
    with _audited(services, who, audit.TEST_NOTIFICATION, idempotency_key=key) as attempt:
        _check(who, Permission.TEST_ALERTS, services, "send test notifications")
        record = services.alerts.send_test(now, key)
        submissions.renew(TEST_NOTIFICATION_FORM)
        attempt.detail = record.detail
        if record.outcome != "delivered":
            attempt.outcome = audit.FAILED if record.outcome == "failed" else record.outcome
        return record
