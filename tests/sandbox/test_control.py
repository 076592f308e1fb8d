"""The /_sandbox control endpoints: reset, stats, health; form and JSON bodies alike."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import stripe

from tests.conftest import SandboxServer

ALMA = {"amount": 15_000, "currency": "eur", "payment_method_types": ["alma"]}


def post_json(sandbox: SandboxServer, path: str, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        sandbox.base_url + path,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_stats_count_v1_requests_by_route_template(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(ALMA)
    client.v1.payment_intents.retrieve(intent.id)
    client.v1.payment_intents.retrieve(intent.id)
    client.v1.payment_intents.cancel(intent.id)
    client.v1.payment_intents.list()
    sandbox.now()  # control requests are not counted
    assert sandbox.stats() == {
        "POST /v1/payment_intents": 1,
        "GET /v1/payment_intents/{id}": 2,
        "POST /v1/payment_intents/{id}/cancel": 1,
        "GET /v1/payment_intents": 1,
    }


def test_reset_empties_everything(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    client.v1.payment_intents.create(ALMA, {"idempotency_key": "reused"})
    sandbox.advance(3600)
    sandbox.faults(rate=0.5, kinds="500")
    sandbox.reset()
    assert sandbox.control("GET", "/_sandbox/clock")["offset"] == 0
    assert sandbox.stats() == {}
    assert client.v1.payment_intents.list().data == []  # also proves faults are off
    assert client.v1.events.list().data == []
    fresh = client.v1.payment_intents.create({**ALMA, "amount": 20_000}, {"idempotency_key": "reused"})
    assert fresh.amount == 20_000  # the idempotency cache was emptied too


def test_reset_can_seed_demo_data_and_takes_json(sandbox: SandboxServer, client: stripe.StripeClient) -> None:
    answer = post_json(sandbox, "/_sandbox/reset", {"seed_demo": 40})
    assert answer["intents"] == 40
    health = sandbox.control("GET", "/_sandbox/health")
    assert health == {"status": "ok", "intents": 40, "events": answer_events(client)}
    assert post_json(sandbox, "/_sandbox/clock/advance", {"seconds": 30})["offset"] == 30


def answer_events(client: stripe.StripeClient) -> int:
    return sum(1 for _ in client.v1.events.list({"limit": 100}).auto_paging_iter())


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/_sandbox/clock/advance", b'{"seconds": ', "not valid JSON"),
        ("/_sandbox/clock/advance", b"[30]", "object of parameters"),
        ("/_sandbox/clock/advance", b'{"seconds": "soon"}', "whole number"),
        ("/_sandbox/clock/advance", b'{"seconds": -5}', "only moves forward"),
        ("/_sandbox/reset", b'{"seed_demo": "many"}', "whole number"),
        ("/_sandbox/faults", b'{"rate": 3}', "between 0 and 1"),
    ],
)
def test_refused_control_requests_answer_400_with_the_reason_and_change_nothing(
    sandbox: SandboxServer, path: str, body: bytes, reason: str
) -> None:
    request = urllib.request.Request(
        sandbox.base_url + path, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert reason in json.loads(caught.value.read())["error"]
    assert sandbox.control("GET", "/_sandbox/clock")["offset"] == 0
