"""The link Stripe sends the customer back with (settings.return_url): is it whole, well formed, and does its
client secret belong to its intent? The secret is compared in the gateway and goes nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dashboard.domain import AlmaIntent
from dashboard.gateway import GatewayError, NotFoundError, StripeGateway

INTENT_ID = re.compile(r"pi_[A-Za-z0-9]{1,255}")
SECRET_TAIL = re.compile(r"_secret_[A-Za-z0-9]{1,255}")
REDIRECT_STATUS = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class ReturnCheck:
    intent: AlmaIntent | None  # set only once the client secret matched
    problem: str | None  # what is wrong with the link, for the user
    error: GatewayError | None = None  # the check itself failed: Stripe's code and message, for the user


def check_return(gateway: StripeGateway, intent_id: str | None, client_secret: str | None) -> ReturnCheck:
    if not intent_id or not client_secret:
        return ReturnCheck(
            None,
            "This link is incomplete: it needs the payment_intent and "
            "payment_intent_client_secret parameters Stripe adds on the way back.",
        )
    if not INTENT_ID.fullmatch(intent_id):
        return ReturnCheck(None, "This link is malformed: payment_intent must look like pi_….")
    secret_tail = client_secret[len(intent_id) :] if client_secret.startswith(intent_id) else ""
    if not SECRET_TAIL.fullmatch(secret_tail):
        return ReturnCheck(None, "This link is malformed: the client secret does not belong to that payment.")
    try:
        intent, matches = gateway.retrieve_intent_checking_secret(intent_id, client_secret)
    except NotFoundError:
        return ReturnCheck(None, "No such payment: the link does not point to a known payment intent.")
    except GatewayError as error:
        return ReturnCheck(None, None, error)
    if not matches:
        return ReturnCheck(None, "This link does not match the payment (wrong client secret), so nothing is shown.")
    return ReturnCheck(intent, None)


def redirect_status(reported: str) -> str | None:
    """The redirect_status the URL claims, when it has the shape of one (it is only ever shown as a claim)."""
    return reported if REDIRECT_STATUS.fullmatch(reported) else None
