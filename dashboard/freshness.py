"""How fresh the stored data is, and what to tell people when it is not. Pure: the store's sync record, the
clock's answer and the settings in, words out; the pages draw them (ui_chrome.freshness_banner).

The data's time is the last successful sync. It is stale when that is older than STALE_AFTER_REFRESHES refresh
intervals, or when the last attempt failed; the cause is read from the failure, in words fit for the mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STALE_AFTER_REFRESHES = 3

Cause = Literal["sandbox_down", "rate_limited", "no_network", "failed", "no_sync"]

# How a failure reads in the sync's record ("<ExceptionType>: <message>") or in the clock's error.
_RATE_LIMITED = ("RateLimitedError", "rate_limit", " 429")
_UNREACHABLE = (
    "GatewayUnavailable",
    "ConnectionError",
    "ConnectionRefused",
    "Connection refused",
    "URLError",
    "timed out",
    "Timeout",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


@dataclass(frozen=True)
class Freshness:
    as_of: int | None  # the last successful sync (the data's time); None: never synced
    age_seconds: int | None  # now - as_of; None when either is unknown
    stale: bool
    cause: Cause | None  # why, when stale
    reason: str  # the cause in words ("the local sandbox is not answering")
    advice: str  # what to do


def failure_cause(error: str, *, local: bool) -> Cause:
    """What a sync or clock failure means: rate limited, the other side unreachable, or something else."""
    if any(mark in error for mark in _RATE_LIMITED):
        return "rate_limited"
    if any(mark in error for mark in _UNREACHABLE):
        return "sandbox_down" if local else "no_network"
    return "failed"


def _words(cause: Cause, *, local: bool, worker: bool, refresh_seconds: int) -> tuple[str, str]:
    who = "the local sandbox" if local else "Stripe"
    if cause == "sandbox_down":
        return (
            "the local sandbox is not answering",
            "Restart the app (`make run`), which starts the sandbox again; with `ALMA_OPS_SANDBOX_URL` set, start the "
            "sandbox at that address. Until then the pages show what was stored.",
        )
    if cause == "rate_limited":
        return (
            f"{who} answered 429 (too many requests)",
            "The sync tries again at each refresh on its own. Stripe's limit is shared with the shop's checkout: if "
            "this lasts, sync less often (`ALMA_OPS_REFRESH_SECONDS`) or let one worker sync for every dashboard "
            "(`ALMA_OPS_SYNC=worker`).",
        )
    if cause == "no_network":
        return (
            "Stripe cannot be reached (no network)",
            "Check this server's connection to api.stripe.com (network, proxy, firewall, DNS). The sync tries again "
            "at each refresh.",
        )
    if cause == "failed":
        return ("the last sync failed", "The error is below; the server log has the details.")
    if worker:
        return (
            "no sync worker has finished a sync lately",
            f"Start one (`python -m dashboard.sync --every {refresh_seconds}`) or check that it still runs.",
        )
    return ("no sync has finished lately", "Press Sync now in the sidebar; if that does not help, restart the app.")


def assess(
    *,
    last_success_at: int | None,
    last_error: str | None,
    now: int | None,
    refresh_seconds: int,
    local: bool,
    worker: bool,
    clock_error: str | None = None,
) -> Freshness:
    """`last_error` is the last attempt's failure (None once one succeeds); `now` is the sync's clock, None with
    `clock_error` when it could not be read (in local mode, the sandbox's clock: the sandbox is down)."""
    age = None if now is None or last_success_at is None else max(0, now - last_success_at)
    too_old = last_success_at is None or (age is not None and age > STALE_AFTER_REFRESHES * refresh_seconds)
    failure = clock_error or last_error
    if failure is not None:
        cause: Cause | None = failure_cause(failure, local=local)
    elif too_old:
        cause = "no_sync"
    else:
        cause = None
    if cause is None:
        return Freshness(last_success_at, age, False, None, "", "")
    reason, advice = _words(cause, local=local, worker=worker, refresh_seconds=refresh_seconds)
    return Freshness(last_success_at, age, True, cause, reason, advice)
