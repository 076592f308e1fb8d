"""Bad input, careless or hostile: each gets Stripe's JSON error (never a plain-text 500, never a hang) and
changes nothing; what no client would send also leaves exactly one line in the sandbox's log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from dashboard.sandbox import model
from dashboard.sandbox.app import build_app
from dashboard.sandbox.handlers import event_type_matcher
from dashboard.sandbox.model import IdFactory
from dashboard.sandbox.service import SandboxConfig, SandboxService
from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, Api, raw_request

ALMA = {"amount": 15_000, "currency": "eur", "payment_method_types": ["alma"]}


def refused(call: Callable[[], Any]) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    assert caught.value.http_status == 400
    return caught.value


def log_lines(sandbox: SandboxServer) -> list[str]:
    return sandbox._log_tail().splitlines()


# ---- event type filters ------------------------------------------------------------------------------------
def test_a_run_of_wildcards_answers_at_once_and_the_sandbox_stays_healthy(
    sandbox: SandboxServer, client: stripe.StripeClient
) -> None:
    """`*` once became a backtracking `.*`: 10 stars took 28 s, 5,000 never answered. The 30-second socket
    timeout only bounds a hang; the answer itself comes in milliseconds."""
    client.v1.payment_intents.create(ALMA)
    for query, found in (
        ("types[]=" + "*" * 4_999 + "x", []),
        ("types[]=" + "*" * 5_000, ["payment_intent.created"]),
        ("type=" + "*" * 4_993 + "created", ["payment_intent.created"]),
    ):
        answer = raw_request(sandbox.base_url, "GET", "/v1/events?" + query, timeout=30)
        assert answer.status == 200 and [event["type"] for event in answer.json()["data"]] == found
    unknown_cursor = raw_request(sandbox.base_url, "GET", "/v1/events?type=nothing.*&starting_after=evt_gone")
    assert unknown_cursor.status == 404 and unknown_cursor.json()["error"]["param"] == "starting_after"
    longer = raw_request(sandbox.base_url, "GET", "/v1/events?types[]=" + "*" * 50_000 + "x", timeout=30)
    assert longer.status == 400 and longer.json()["error"]["param"] == "types"
    assert sandbox.control("GET", "/_sandbox/health")["status"] == "ok"


@pytest.mark.parametrize(
    ("patterns", "event_type", "matches"),
    [
        (["payment_intent.created"], "payment_intent.created", True),
        (["payment_intent.created"], "payment_intent.created.x", False),
        (["payment_intent.*"], "payment_intent.succeeded", True),
        (["payment_intent.*"], "charge.succeeded", False),
        (["*.succeeded"], "charge.succeeded", True),
        (["*.succeeded"], "charge.succeeded.later", False),
        (["*"], "anything", True),
        (["**"], "", True),
        (["charge.*.updated"], "charge.refund.updated", True),
        (["charge.*.updated"], "charge.updated", False),  # the stars sit between the two dots
        (["a*b*c"], "aXbYc", True),
        (["a*b*c"], "acb", False),
        (["ab*ba"], "aba", False),  # head and tail must not overlap
        (["x*", "charge.*"], "charge.refunded", True),
        (["payment_intent.(created)"], "payment_intent.created", False),  # no regex syntax
    ],
)
def test_event_type_patterns_match_as_stripe_filters(patterns: list[str], event_type: str, matches: bool) -> None:
    assert event_type_matcher(patterns)(event_type) is matches


def test_at_most_twenty_event_types(client: stripe.StripeClient) -> None:
    error = refused(lambda: client.v1.events.list({"types": [f"t{n}" for n in range(21)]}))
    assert error.param == "types"
    assert client.v1.events.list({"types": [f"t{n}" for n in range(20)]}).data == []


# ---- amounts -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("100000000", "amount_too_large"),
        ("1000000000000000000000000000000", "parameter_invalid_integer"),
        ("1" * 5_000, "parameter_invalid_integer"),
        ("٥٠٠٠", "parameter_invalid_integer"),  # Arabic-Indic digits: str.isdigit() says yes
        ("5000²", "parameter_invalid_integer"),
        ("50.00", "parameter_invalid_integer"),
        ("1e4", "parameter_invalid_integer"),
        ("-15000", "amount_too_small"),
        ("0", "amount_too_small"),
    ],
)
def test_amounts_stripe_refuses_are_refused(client: stripe.StripeClient, amount: str, code: str) -> None:
    error = refused(lambda: client.v1.payment_intents.create({**ALMA, "amount": amount}))
    assert (error.code, error.param) == (code, "amount")
    assert len(error.user_message or "") < 200  # a 5,000-digit value is not echoed back whole
    assert client.v1.payment_intents.list().data == []


def test_eight_digits_is_the_largest_amount(client: stripe.StripeClient) -> None:
    assert client.v1.payment_intents.create({**ALMA, "amount": 99_999_999}).amount == 99_999_999


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("1" * 5_000, "parameter_invalid_integer"),
        ("٥٠٠٠", "parameter_invalid_integer"),
        ("1e3", "parameter_invalid_integer"),
        ("-100", "amount_too_small"),
        ("99999999999", "amount_too_large"),
    ],
)
def test_amounts_to_capture_are_checked_alike(
    client: stripe.StripeClient, sandbox: SandboxServer, amount: str, code: str
) -> None:
    api = Api(client, sandbox)
    held = api.send_to_alma(capture_method="manual")
    api.customer_decides(held, "authorize")
    error = refused(lambda: client.v1.payment_intents.capture(held.id, {"amount_to_capture": amount}))
    assert (error.code, error.param) == (code, "amount_to_capture")
    assert client.v1.payment_intents.retrieve(held.id).status == "requires_capture"


# ---- Stripe's limits on text -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"k" * 41: "v"}, "at most 40 characters"),
        ({"key": "v" * 501}, "at most 500 characters"),
        ({f"key{n}": "v" for n in range(51)}, "at most 50 metadata keys"),
    ],
)
def test_metadata_beyond_stripes_limits_is_refused(
    client: stripe.StripeClient, metadata: dict[str, str], fragment: str
) -> None:
    error = refused(lambda: client.v1.payment_intents.create({**ALMA, "metadata": metadata}))
    assert error.param == "metadata" and fragment in (error.user_message or "")
    intent = client.v1.payment_intents.create(ALMA)
    refused(lambda: client.v1.payment_intents.update(intent.id, {"metadata": metadata}))
    assert client.v1.payment_intents.retrieve(intent.id).metadata.to_dict() == {}


def test_metadata_at_stripes_limits_is_accepted(client: stripe.StripeClient) -> None:
    metadata = {f"{n:02d}".ljust(40, "k"): "v" * 500 for n in range(50)}
    assert client.v1.payment_intents.create({**ALMA, "metadata": metadata}).metadata.to_dict() == metadata


def test_descriptions_are_at_most_1000_characters(client: stripe.StripeClient) -> None:
    error = refused(lambda: client.v1.payment_intents.create({**ALMA, "description": "d" * 1_001}))
    assert error.param == "description" and "at most 1000 characters" in (error.user_message or "")
    intent = client.v1.payment_intents.create({**ALMA, "description": "d" * 1_000})
    refused(lambda: client.v1.payment_intents.update(intent.id, {"description": "e" * 1_001}))
    assert client.v1.payment_intents.retrieve(intent.id).description == "d" * 1_000


@pytest.mark.parametrize(
    "return_url", ["javascript:alert(document.cookie)", "data:text/html,<script>x</script>", "ftp://h/x", "//h/x", "x"]
)
def test_return_urls_must_be_http_or_https(client: stripe.StripeClient, return_url: str) -> None:
    send = {**ALMA, "payment_method_data": {"type": "alma"}, "confirm": True, "return_url": return_url}
    error = refused(lambda: client.v1.payment_intents.create(send))
    assert (error.code, error.param) == ("url_invalid", "return_url")
    intent = client.v1.payment_intents.create(ALMA)
    confirm = {"payment_method_data": {"type": "alma"}, "return_url": return_url}
    assert refused(lambda: client.v1.payment_intents.confirm(intent.id, confirm)).code == "url_invalid"
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


def test_any_string_parameter_is_at_most_5000_characters(client: stripe.StripeClient) -> None:
    error = refused(lambda: client.v1.payment_intents.search({"query": "status:'" + "s" * 5_000 + "'"}))
    assert error.param == "query"


# ---- malformed requests ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/payment_intents", b"amount=15000&currency=eur&metadata" + b"[a]" * 1_000 + b"=x", 400),
        ("GET", "/v1/payment_intents?expand" + "[a]" * 1_000 + "=x", None, 400),
        ("POST", "/v1/payment_intents", b"amount=15000&currency=eur&description=" + b"d" * (2 * 1024 * 1024), 413),
    ],
)
def test_malformed_requests_answer_stripes_json_and_one_log_line(
    sandbox: SandboxServer, method: str, path: str, body: bytes | None, status: int
) -> None:
    before = len(log_lines(sandbox))
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    answer = raw_request(sandbox.base_url, method, path, body=body, headers=headers)
    assert answer.status == status and answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["type"] == "invalid_request_error"
    new_lines = log_lines(sandbox)[before:]
    assert len(new_lines) == 1 and "refused" in new_lines[0], new_lines
    assert raw_request(sandbox.base_url, "GET", "/v1/payment_intents").json()["data"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payment_intents?limit=" + "9" * 5_000,
        "/v1/payment_intents?created=" + "9" * 5_000,
        "/v1/payment_intents?created[gt]=%D9%A3",  # Arabic-Indic 3
        "/v1/payment_intents/search?query=amount>" + "9" * 4_000,
        "/v1/payment_intents/search?query=amount%3E%D9%A3",
    ],
)
def test_huge_or_foreign_digit_integers_anywhere_are_400(sandbox: SandboxServer, path: str) -> None:
    answer = raw_request(sandbox.base_url, "GET", path)
    assert answer.status == 400, answer.body[:300]
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_hosted_page_refuses_foreign_digits_for_installments(
    sandbox: SandboxServer, client: stripe.StripeClient
) -> None:
    waiting = client.v1.payment_intents.create(
        {**ALMA, "payment_method_data": {"type": "alma"}, "confirm": True, "return_url": RETURN_URL}
    )
    assert waiting.next_action is not None
    url = waiting.next_action.redirect_to_url.url
    path = url[len(sandbox.base_url) :]
    answer = raw_request(sandbox.base_url, "POST", path, key=None, form={"decision": "authorize", "installments": "٣"})
    assert answer.status == 400
    assert client.v1.payment_intents.retrieve(waiting.id).status == "requires_action"


def test_routing_refusals_are_json_too(sandbox: SandboxServer) -> None:
    for method, path, status in (("GET", "/_sandbox/reset", 405), ("GET", "/nothing-here", 404)):
        answer = raw_request(sandbox.base_url, method, path, key=None)
        assert answer.status == status and answer.json()["error"]["type"] == "invalid_request_error"


def test_an_unexpected_failure_anywhere_answers_api_error_json_and_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No request can make the sandbox crash on purpose any more, so a failure is planted in-process: the
    clock sweep that runs before every request."""
    service = SandboxService(SandboxConfig())

    def broken_sweep() -> None:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(service, "sweep", broken_sweep)

    app = build_app(service)
    with caplog.at_level(logging.ERROR, logger="dashboard.sandbox"):
        for path in ("/_sandbox/health", "/alma/pay/token", "/v1/payment_intents"):
            status, headers, body = asyncio.run(asgi_get(app, path))
            assert status == 500 and json.loads(body)["error"]["type"] == "api_error"
            assert headers[b"request-id"].startswith(b"req_")
    records = [record for record in caplog.records if "planted failure" in record.getMessage()]
    assert len(records) == 3 and all(record.exc_info is None for record in records)  # no traceback
    assert all("\n" not in record.getMessage() for record in records)


async def asgi_get(app: Any, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET straight through the ASGI app, as uvicorn would pass it."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


# ---- ids and secrets ---------------------------------------------------------------------------------------
def test_ids_client_secrets_and_tokens_come_from_the_operating_systems_csprng(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[int] = []

    def token_bytes(count: int) -> bytes:
        drawn.append(count)
        return bytes(range(256)) * (count // 256 + 1)

    monkeypatch.setattr(model.secrets, "token_bytes", token_bytes)
    ids = IdFactory()
    assert ids.new("pi_") == "pi_abcdefghijklmnopqrstuvwx" and drawn
    assert ids.new("", 4) == "yzAB"  # the next bytes of the same draw, never a replay


def test_two_factories_never_share_a_sequence() -> None:
    assert IdFactory().new("pi_") != IdFactory().new("pi_")
    assert not hasattr(IdFactory(), "_random")


def test_error_bodies_are_json_objects(sandbox: SandboxServer) -> None:
    answer = raw_request(sandbox.base_url, "POST", "/v1/payment_intents", body=b"\xff\xfe", headers={})
    assert answer.status == 400 and isinstance(json.loads(answer.body)["error"], dict)
