"""Alma's customer page as the sandbox serves it: plain HTML, merchant and amount, two buttons."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import stripe

from tests.conftest import TEST_KEY, SandboxServer, start_sandbox
from tests.sandbox.support import RETURN_URL, hosted_page, raw_request, submit_hosted_page

SEND_TO_ALMA = {
    "amount": 123_456,
    "currency": "eur",
    "payment_method_types": ["alma"],
    "description": "Order #9 <b>",
    "payment_method_data": {"type": "alma"},
    "confirm": True,
    "return_url": RETURN_URL,
}


def test_page_shows_merchant_amount_and_the_two_buttons_without_scripts(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    answer = hosted_page(intent.next_action.redirect_to_url.url)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.body.decode()
    assert "Alma Ops test shop" in html and "1\u202f234,56\u00a0€" in html
    assert "Order #9 &lt;b&gt;" in html  # the description is escaped
    assert ">Authorize test payment</button>" in html and ">Fail test payment</button>" in html
    assert "<form method='post'" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=['\"]?https?:", html)  # no outside assets
    assert intent.client_secret not in html


def test_a_malformed_submission_changes_nothing(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    url = intent.next_action.redirect_to_url.url
    assert submit_hosted_page(url, "maybe").status == 400
    assert submit_hosted_page(url, "authorize", installments=12).status == 400
    parts = urlsplit(url)
    for installments in ("²", "three", ""):  # "²" counts as a digit for str.isdigit, not for int()
        form = {"decision": "authorize", "installments": installments}
        answer = raw_request(f"{parts.scheme}://{parts.netloc}", "POST", parts.path, key=None, form=form)
        assert answer.status == 400, installments
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"


def test_unknown_token_is_404(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    base = intent.next_action.redirect_to_url.url.rsplit("/", 1)[0]
    assert hosted_page(base + "/not-a-token").status == 404


def test_page_needs_no_api_key_but_the_api_does(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(SEND_TO_ALMA)
    url = intent.next_action.redirect_to_url.url
    assert hosted_page(url).status == 200
    assert raw_request(url.split("/alma/")[0], "GET", f"/v1/payment_intents/{intent.id}", key=None).status == 401


def closed_page(url: str) -> tuple[int, str]:
    answer = hosted_page(url)
    return answer.status, answer.body.decode()


def back_link(html: str) -> str | None:
    found = re.search(r"<a href='([^']*)'>Back to the shop</a>", html)
    return found.group(1) if found else None


def test_an_answered_page_says_so_and_links_back_to_the_shop(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    return_url = "https://shop.example/return?tab=lab&x=<b>'"
    approved = client.v1.payment_intents.create({**SEND_TO_ALMA, "return_url": return_url})
    declined = client.v1.payment_intents.create(SEND_TO_ALMA)
    for intent, decision in ((approved, "authorize"), (declined, "fail")):
        assert submit_hosted_page(intent.next_action.redirect_to_url.url, decision).status == 303
    status, html = closed_page(approved.next_action.redirect_to_url.url)
    assert status == 410 and "already approved" in html
    assert back_link(html) == "https://shop.example/return?tab=lab&amp;x=&lt;b&gt;&#x27;"  # escaped, as text
    assert approved.client_secret not in html
    status, html = closed_page(declined.next_action.redirect_to_url.url)
    assert status == 410 and "already failed" in html and back_link(html) == RETURN_URL.replace("&", "&amp;")
    again = submit_hosted_page(approved.next_action.redirect_to_url.url, "fail")  # a second answer
    assert again.status == 410 and client.v1.payment_intents.retrieve(approved.id).status == "succeeded"


def test_an_expired_or_canceled_page_says_so_and_links_back(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    expired = client.v1.payment_intents.create(SEND_TO_ALMA)
    canceled = client.v1.payment_intents.create(SEND_TO_ALMA)
    client.v1.payment_intents.cancel(canceled.id)
    sandbox.advance(3601)
    status, html = closed_page(expired.next_action.redirect_to_url.url)
    assert status == 410 and "expired" in html and back_link(html)
    status, html = closed_page(canceled.next_action.redirect_to_url.url)
    assert status == 410 and "canceled" in html and back_link(html)


def test_closed_pages_survive_a_restart(tmp_path: Path) -> None:
    server = start_sandbox("--state", str(tmp_path / "state"))
    try:
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": server.base_url}, max_network_retries=0)
        intent = client.v1.payment_intents.create(SEND_TO_ALMA)
        url = intent.next_action.redirect_to_url.url
        submit_hosted_page(url, "authorize")
    finally:
        server.stop()
    restarted = start_sandbox("--state", str(tmp_path / "state"), port=urlsplit(url).port)
    try:
        status, html = closed_page(url)
        assert status == 410 and "already approved" in html and back_link(html)
    finally:
        restarted.stop()
