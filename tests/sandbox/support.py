"""Helpers shared by the sandbox tests: raw HTTP where the SDK would hide what is checked (headers, status,
missing keys), the hosted page driven as a browser without JavaScript would, and intent recipes."""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import stripe

from tests.conftest import TEST_KEY, SandboxServer

RETURN_URL = "https://shop.example/return?tab=lab"
# One customer sent to Alma's page: a confirmed 150 EUR Alma intent, waiting in requires_action.
SEND_TO_ALMA = {
    "amount": 15_000,
    "currency": "eur",
    "payment_method_types": ["alma"],
    "payment_method_data": {"type": "alma"},
    "confirm": True,
    "return_url": RETURN_URL,
}
STRIPE_TEST_KEY = os.environ.get("STRIPE_SECRET_KEY", "")


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    path: str,
    *,
    key: str | None = TEST_KEY,
    form: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> RawAnswer:
    """`form` is sent form-encoded; `body` as given, with whatever Content-Type `headers` name."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if form is not None:
        body = urlencode(form, doseq=True).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return RawAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def hosted_page(url: str) -> RawAnswer:
    parts = urlsplit(url)
    return raw_request(f"{parts.scheme}://{parts.netloc}", "GET", parts.path, key=None)


def submit_hosted_page(url: str, decision: str, installments: int = 3) -> RawAnswer:
    """POST the hosted page's form as a browser would (redirects not followed)."""
    parts = urlsplit(url)
    form = {"decision": decision, "installments": installments}
    return raw_request(f"{parts.scheme}://{parts.netloc}", "POST", parts.path, key=None, form=form)


def redirect_query(answer: RawAnswer) -> dict[str, list[str]]:
    assert answer.status == 303, answer.body
    return parse_qs(urlsplit(answer.headers["location"]).query)


def sandbox_client(sandbox: SandboxServer, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.base_url}, max_network_retries=retries)


@dataclass
class Api:
    """The API the lifecycle tests run against: the sandbox, or Stripe test mode when STRIPE_SECRET_KEY is set
    (steps that need the sandbox's hosted page or clock are skipped there)."""

    client: stripe.StripeClient
    sandbox: SandboxServer | None

    def hosted(self) -> SandboxServer:
        if self.sandbox is None:
            pytest.skip("needs the sandbox's hosted page (Stripe test mode redirects to Alma's own)")
        return self.sandbox

    def create(self, amount: int = 15_000, **params: Any) -> stripe.PaymentIntent:
        return self.client.v1.payment_intents.create(
            {"amount": amount, "currency": "eur", "payment_method_types": ["alma"], **params}
        )

    def send_to_alma(self, amount: int = 15_000, **params: Any) -> stripe.PaymentIntent:
        confirm = {"payment_method_data": {"type": "alma"}, "confirm": True, "return_url": RETURN_URL}
        return self.create(amount, **{**confirm, **params})

    def customer_decides(self, intent: stripe.PaymentIntent, decision: str, installments: int = 3) -> RawAnswer:
        self.hosted()
        assert intent.next_action is not None
        return submit_hosted_page(intent.next_action.redirect_to_url.url, decision, installments)
