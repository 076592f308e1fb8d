"""The /_sandbox control endpoints: reset, stats, health; JSON bodies only, and only from this machine."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
import stripe

from dashboard.local_sandbox import LocalSandbox
from dashboard.sandbox.__main__ import parse_args
from dashboard.sandbox.app import MAX_CLOCK_AHEAD_SECONDS
from tests.conftest import SandboxServer
from tests.sandbox.support import RawAnswer, raw_request

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
        ("/_sandbox/clock/advance", b'{"seconds": 1e24}', "whole number"),
        ("/_sandbox/clock/advance", b'{"seconds": 1000000000000000000000000}', "between"),
        ("/_sandbox/clock/advance", b'{"seconds": 30.5}', "whole number"),
        ("/_sandbox/clock/advance", b'{"seconds": true}', "whole number"),
        ("/_sandbox/clock/advance", rb'{"seconds": "\u0665"}', "whole number"),
        ("/_sandbox/clock/advance", b'{"seconds": 315360001}', "between 0 and 315,360,000"),
        ("/_sandbox/reset", b'{"seed_demo": "many"}', "whole number"),
        ("/_sandbox/reset", b'{"seed_demo": 1000000000}', "between 0 and 1,000,000"),
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
    error = json.loads(caught.value.read())["error"]
    assert error["type"] == "invalid_request_error" and reason in error["message"]
    assert sandbox.control("GET", "/_sandbox/clock")["offset"] == 0


def test_the_clock_runs_at_most_ten_years_ahead(sandbox: SandboxServer) -> None:
    sandbox.advance(MAX_CLOCK_AHEAD_SECONDS - 60)
    with pytest.raises(urllib.error.HTTPError) as caught:
        sandbox.advance(61)
    assert caught.value.code == 400 and "at most 60" in json.loads(caught.value.read())["error"]["message"]
    assert sandbox.control("GET", "/_sandbox/clock")["offset"] == MAX_CLOCK_AHEAD_SECONDS - 60


# ---- who may call them ---------------------------------------------------------------------------------------
def control(sandbox: SandboxServer, method: str, path: str, body: bytes | None = None, **headers: str) -> RawAnswer:
    sent = {"Content-Type": "application/json", **headers} if body is not None else headers
    return raw_request(sandbox.base_url, method, path, key=None, body=body, headers=sent)


def untouched(sandbox: SandboxServer) -> bool:
    return (
        sandbox.control("GET", "/_sandbox/clock")["offset"] == 0
        and sandbox.control("GET", "/_sandbox/health")["intents"] == 0
    )


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "10.0.0.7:12111", ""])
def test_a_host_that_is_not_loopback_is_refused(sandbox: SandboxServer, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    for method, path, body in (("GET", "/_sandbox/stats", None), ("POST", "/_sandbox/reset", b'{"seed_demo": 5}')):
        answer = control(sandbox, method, path, body, Host=host)
        assert answer.status == 403, answer.body
        assert "loopback" in answer.json()["error"]["message"]
    assert untouched(sandbox)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_loopback_hosts_are_accepted(sandbox: SandboxServer, host: str) -> None:
    port = str(urlsplit(sandbox.base_url).port)
    answer = control(sandbox, "POST", "/_sandbox/clock/advance", b'{"seconds": 5}', Host=host.format(port=port))
    assert answer.status == 200 and answer.json()["offset"] == 5


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:8501"])
def test_a_foreign_origin_is_refused(sandbox: SandboxServer, origin: str) -> None:
    """A cross-site `fetch` carries its page's Origin, and that page is not the sandbox itself."""
    answer = control(sandbox, "POST", "/_sandbox/reset", b'{"seed_demo": 5}', Origin=origin)
    assert answer.status == 403 and "Cross-origin" in answer.json()["error"]["message"]
    assert untouched(sandbox)


def test_the_sandboxs_own_origin_is_accepted(sandbox: SandboxServer) -> None:
    answer = control(sandbox, "POST", "/_sandbox/clock/advance", b'{"seconds": 5}', Origin=sandbox.base_url)
    assert answer.status == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"seed_demo=5"),
        ("text/plain", b'{"seed_demo": 5}'),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="seed_demo"\r\n\r\n5\r\n--x--',
        ),
        (None, b""),
    ],
)
def test_changes_take_json_bodies_only(sandbox: SandboxServer, content_type: str | None, body: bytes) -> None:
    """What an HTML form on another site can send (forms, text/plain, no type) never reaches a control."""
    headers = {"Content-Type": content_type} if content_type else {}
    answer = raw_request(sandbox.base_url, "POST", "/_sandbox/reset?seed_demo=5", key=None, body=body, headers=headers)
    assert answer.status == 415 and "JSON" in answer.json()["error"]["message"]
    assert untouched(sandbox)


def test_a_control_token_is_checked_on_every_control_request() -> None:
    token = "t" * 24
    server = LocalSandbox.start(control_token=token)
    try:
        for method, path, body in (("GET", "/_sandbox/health", None), ("POST", "/_sandbox/reset", b"{}")):
            for sent in ({}, {"Sandbox-Control-Token": "wrong"}):
                answer = control(server, method, path, body, **sent)
                assert answer.status == 401 and "control token" in answer.json()["error"]["message"]
        holder = LocalSandbox.attach(server.base_url, control_token=token)
        assert holder.advance(30) > 0 and holder.control("GET", "/_sandbox/clock")["offset"] == 30
    finally:
        server.stop()


def test_binding_beyond_loopback_requires_a_control_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_CONTROL_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.168.1.20", "sandbox.internal"):
        with pytest.raises(SystemExit):
            parse_args(["--host", host])
    with pytest.raises(SystemExit):
        parse_args(["--host", "0.0.0.0", "--control-token", "short"])
    assert parse_args(["--host", "0.0.0.0", "--control-token", "x" * 16]).control_token == "x" * 16
    monkeypatch.setenv("SANDBOX_CONTROL_TOKEN", "y" * 20)
    assert parse_args(["--host", "0.0.0.0"]).control_token == "y" * 20
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert parse_args(["--host", host]).host == host
