"""Every write the dashboard makes, one function each: create (and confirm) a test intent, cancel, capture, and
move the local sandbox's clock. Pages call these and only draw the outcome.

Each function takes who acts (access.Principal; anonymous until sign-in is configured) and what they
submitted, checks the person's permission in this mode, derives the idempotency key from the submission,
and applies the retry policy: after an error Stripe answered, the form starts a new submission (Stripe would
replay that error to every retry under the same key); after a lost connection it keeps the key, so a retry
replays whatever the request did instead of acting twice. Failures raise GatewayError (ActionRefused when the
person may not act); the sync brings every effect into the store like any other change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from dashboard.access import Permission, Principal
from dashboard.domain import AlmaIntent
from dashboard.gateway import (
    CaptureMethod,
    CreatedIntent,
    CreateIntentRequest,
    GatewayError,
    submission_idempotency_key,
)
from dashboard.lab import tagged
from dashboard.wiring import Services

# The forms whose submissions key the writes: the create form, and the actions on Test lab's intents.
CREATE_FORM = "create"
INTENT_ACTIONS_FORM = "lab_actions"


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
    _check(who, Permission.TEST_LAB, services, "create test intents")
    key = submission_idempotency_key("create_intent", submissions.current(CREATE_FORM), **asdict(submission))
    request = CreateIntentRequest(
        amount=submission.amount,
        capture_method=submission.capture_method,
        description=submission.description,
        metadata=tagged(submission.metadata),
        return_url=services.settings.return_url,
    )
    return services.gateway.create_alma_intent(request, key)


def cancel_intent(services: Services, who: Principal, intent_id: str, submissions: Submissions) -> AlmaIntent:
    _check(who, Permission.ACT_ON_INTENTS, services, "cancel payments")
    key = submission_idempotency_key("cancel", submissions.current(INTENT_ACTIONS_FORM), intent_id=intent_id)
    try:
        return services.gateway.cancel_intent(intent_id, key)
    except GatewayError as error:
        raise _renewing_after_answered_error(submissions, INTENT_ACTIONS_FORM, error) from None


def capture_intent(
    services: Services, who: Principal, intent_id: str, amount: int, submissions: Submissions
) -> AlmaIntent:
    """Capture `amount` cents (at most what is capturable; the rest is released)."""
    _check(who, Permission.ACT_ON_INTENTS, services, "capture payments")
    current = submissions.current(INTENT_ACTIONS_FORM)
    key = submission_idempotency_key("capture", current, intent_id=intent_id, amount=amount)
    try:
        return services.gateway.capture_intent(intent_id, amount, key)
    except GatewayError as error:
        raise _renewing_after_answered_error(submissions, INTENT_ACTIONS_FORM, error) from None


def advance_clock(services: Services, who: Principal, seconds: int) -> int:
    """Move the local sandbox's clock forward; its new time. OSError when the sandbox does not answer."""
    _check(who, Permission.ADVANCE_CLOCK, services, "move the sandbox clock")
    if services.sandbox is None:
        raise ActionRefused("Only the local sandbox has a clock to move.", code="not_permitted")
    return services.sandbox.advance(seconds)
