"""Injected faults: a given fraction of /v1 requests answers 429 / 500 or loses its connection."""

from __future__ import annotations

import http.client
import urllib.error

import pytest
import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import raw_request


def outcome(sandbox: SandboxServer) -> str:
    try:
        return str(raw_request(sandbox.base_url, "GET", "/v1/payment_intents").status)
    except (http.client.HTTPException, ConnectionError):
        return "drop"


def test_rate_limit_answers_like_stripes_limiter(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    settings = sandbox.faults(rate=1, kinds="429")
    assert settings == {"rate": 1.0, "kinds": ["429"], "seed": 1, "script": [], "enabled": True}
    with pytest.raises(stripe.RateLimitError) as caught:
        client.v1.payment_intents.list()
    assert caught.value.http_status == 429 and caught.value.error.code == "rate_limit"


def test_drop_closes_the_connection_without_an_answer(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    sandbox.faults(rate=1, kinds="drop")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create({"amount": 15_000, "currency": "eur"})
    assert outcome(sandbox) == "drop"
    sandbox.faults(rate=0)
    assert client.v1.payment_intents.list().data == []  # the dropped create changed nothing
    assert sandbox.control("GET", "/_sandbox/health")["status"] == "ok"


def test_the_given_fraction_fails_reproducibly_per_seed(sandbox: SandboxServer) -> None:
    sandbox.faults(rate=0.3, seed=7)
    first = [outcome(sandbox) for _ in range(200)]
    failures = sum(result != "200" for result in first)
    assert 40 <= failures <= 80  # 60 expected; the band is about three standard deviations
    assert {"429", "500", "drop"} <= set(first)
    sandbox.faults(rate=0.3, seed=7)
    assert [outcome(sandbox) for _ in range(200)] == first
    assert sandbox.stats()["GET /v1/payment_intents"] == 400  # faulted requests count as served


def test_a_script_decides_the_next_requests_in_order_then_the_rate_does(sandbox: SandboxServer) -> None:
    settings = sandbox.faults(script=["drop", "500", "ok", "429"])
    assert settings["script"] == ["drop", "500", "ok", "429"] and settings["enabled"] is True
    assert [outcome(sandbox) for _ in range(6)] == ["drop", "500", "200", "429", "200", "200"]


def test_rate_zero_switches_faults_off_and_control_endpoints_never_fail(sandbox: SandboxServer) -> None:
    sandbox.faults(rate=1)
    assert sandbox.now() > 0 and sandbox.stats() == {}
    assert sandbox.faults(rate=0)["enabled"] is False
    assert {outcome(sandbox) for _ in range(20)} == {"200"}


@pytest.mark.parametrize(
    "form",
    [
        {"rate": "2"},
        {"rate": "0.5", "kinds": "429,teapot"},
        {"rate": "x"},
        {"script": ["drop", "late"]},
        {"script": "drop"},
    ],
)
def test_bad_fault_settings_are_refused(sandbox: SandboxServer, form: dict[str, str]) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        sandbox.control("POST", "/_sandbox/faults", **form)
    assert caught.value.code == 400
