"""The freshness rule: stale after three refresh intervals or a failed attempt, the cause in the mode's words."""

from __future__ import annotations

import pytest

from dashboard.freshness import STALE_AFTER_REFRESHES, Freshness, assess, failure_cause

NOW = 1_800_000_000
REFRESH = 15


def judged(**given: object) -> Freshness:
    values: dict[str, object] = {
        "last_success_at": NOW - 10,
        "last_error": None,
        "now": NOW,
        "refresh_seconds": REFRESH,
        "local": True,
        "worker": False,
    }
    return assess(**{**values, **given})  # type: ignore[arg-type]


def test_fresh_data_needs_no_banner() -> None:
    state = judged(last_success_at=NOW - STALE_AFTER_REFRESHES * REFRESH)
    assert (state.stale, state.age_seconds, state.as_of) == (False, 45, NOW - 45)


def test_older_than_three_intervals_is_stale_and_says_nobody_synced() -> None:
    state = judged(last_success_at=NOW - STALE_AFTER_REFRESHES * REFRESH - 1)
    assert (state.stale, state.cause, state.age_seconds) == (True, "no_sync", 46)
    assert "Sync now" in state.advice
    worker = judged(last_success_at=NOW - 3_600, worker=True)
    assert "python -m dashboard.sync --every 15" in worker.advice


def test_a_failed_attempt_is_stale_however_recent_the_data() -> None:
    state = judged(last_error="RateLimitedError: rate_limit: Too many requests")
    assert (state.stale, state.cause) == (True, "rate_limited")
    assert state.reason == "the local sandbox answered 429 (too many requests)"
    assert judged(last_error="RateLimitedError: x", local=False).reason == "Stripe answered 429 (too many requests)"


@pytest.mark.parametrize(
    ("error", "local", "cause"),
    [
        ("GatewayUnavailable: Could not connect", True, "sandbox_down"),
        ("GatewayUnavailable: Could not connect", False, "no_network"),
        ("URLError: <urlopen error [Errno 111] Connection refused>", True, "sandbox_down"),
        ("ValueError: bad cursor", False, "failed"),
        ("StripeError: 429 Too Many Requests", False, "rate_limited"),
    ],
)
def test_failure_causes(error: str, local: bool, cause: str) -> None:
    assert failure_cause(error, local=local) == cause


def test_an_unreadable_sandbox_clock_means_the_sandbox_is_down_and_the_age_is_unknown() -> None:
    state = judged(now=None, clock_error="URLError: [Errno 111] Connection refused")
    assert (state.stale, state.cause, state.age_seconds, state.as_of) == (True, "sandbox_down", None, NOW - 10)
    assert "make run" in state.advice


def test_never_synced_is_stale() -> None:
    state = judged(last_success_at=None)
    assert (state.stale, state.as_of, state.age_seconds) == (True, None, None)
