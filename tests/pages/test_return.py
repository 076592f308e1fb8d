"""The return page with the exact query the sandbox's hosted page redirects to, and with bad queries."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.gateway import StripeGateway
from tests.pages.conftest import create_intent, open_app, press_hosted_button, return_query

PAGE = "app_pages/return.py"


def page_text(at: AppTest) -> str:
    parts = [*at.success, *at.info, *at.warning, *at.error, *at.markdown, *at.caption]
    return "\n".join(str(p.value) for p in parts)


def forgets_the_query(at: AppTest) -> bool:
    """The page overwrote the browser history entry that carries the client secret."""
    return any("history.replaceState" in h.proto.body for h in at.get("html"))


def links(at: AppTest) -> dict[str, str]:
    return {link.proto.label: link.proto.page + "?" + link.proto.query_string for link in at.get("page_link")}


def returned(gateway: StripeGateway, button: str, capture_method: str = "automatic") -> tuple[str, dict[str, str]]:
    created = create_intent(gateway, 9900, capture_method)
    return created.intent.id, return_query(press_hosted_button(created.redirect_url or "", button))


@pytest.mark.parametrize(
    ("button", "message", "shown"),
    [
        ("Authorize test payment", "Success! Payment received.", "success"),
        ("Fail test payment", "Payment failed. Please try another payment method.", "error"),
    ],
)
def test_outcome_follows_the_intents_status(gateway: StripeGateway, button: str, message: str, shown: str) -> None:
    intent_id, query = returned(gateway, button)
    assert query["payment_intent"] == intent_id and "payment_intent_client_secret" in query

    at = open_app(PAGE, **query)

    assert [e.value for e in getattr(at, shown)] == [message]
    assert intent_id in page_text(at)
    assert forgets_the_query(at)
    assert query["payment_intent_client_secret"] not in page_text(at)
    assert any(f"intent={intent_id}" in target for target in links(at).values())
    assert "Back to Test lab" in links(at)


def test_authorised_manual_capture_says_so(gateway: StripeGateway) -> None:
    _, query = returned(gateway, "Authorize test payment", capture_method="manual")

    at = open_app(PAGE, **query)

    assert [s.value for s in at.success] == ["Payment authorised. It will be received once captured."]


def test_any_other_status_is_something_went_wrong(gateway: StripeGateway) -> None:
    intent_id, query = returned(gateway, "Authorize test payment", capture_method="manual")
    gateway.cancel_intent(intent_id, "cancel-before-return")

    at = open_app(PAGE, **query)

    assert [w.value for w in at.warning] == ["Something went wrong."]


def test_a_rerun_keeps_the_outcome_and_drops_the_query(gateway: StripeGateway) -> None:
    _, query = returned(gateway, "Authorize test payment")
    at = open_app(PAGE, **query)

    at.run()  # e.g. "Sync now": the browser sends the query it loaded with once more

    assert [s.value for s in at.success] == ["Success! Payment received."]
    assert at.query_params == {}
    at.run()
    assert [s.value for s in at.success] == ["Success! Payment received."]


def test_the_return_refreshes_the_store(gateway: StripeGateway) -> None:
    at = open_app()  # first sync: nothing yet
    intent_id, query = returned(gateway, "Authorize test payment")

    at.switch_page(PAGE)
    at.query_params.update(query)
    at.run()
    at.switch_page("app_pages/intents.py")
    at.query_params.update({"intent": intent_id})
    at.run()

    assert any(f"Intent `{intent_id}`" == h.value for h in at.subheader)


BAD_QUERIES = {
    "nothing": ({}, "No payment to show"),
    "no secret": ({"payment_intent": "pi_123"}, "This link is incomplete"),
    "no intent": ({"payment_intent_client_secret": "pi_123_secret_abc"}, "This link is incomplete"),
    "malformed id": ({"payment_intent": "ch_123", "payment_intent_client_secret": "ch_123_secret_a"}, "malformed"),
    "secret of another intent": (
        {"payment_intent": "pi_123", "payment_intent_client_secret": "pi_456_secret_abc"},
        "does not belong",
    ),
    "unknown intent": (
        {"payment_intent": "pi_unknown", "payment_intent_client_secret": "pi_unknown_secret_abc"},
        "No such payment",
    ),
}


@pytest.mark.parametrize("case", BAD_QUERIES)
def test_bad_links_show_a_message_and_no_intent(gateway: StripeGateway, case: str) -> None:
    query, message = BAD_QUERIES[case]
    create_intent(gateway, 5000)  # something the page could wrongly show

    at = open_app(PAGE, **query)

    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.success and not at.warning
    assert "pi_" not in " ".join(m.value for m in at.markdown)
    assert forgets_the_query(at) == bool(query)


def test_a_wrong_secret_for_a_real_intent_shows_nothing_of_it(gateway: StripeGateway) -> None:
    intent_id, query = returned(gateway, "Authorize test payment")
    forged = {**query, "payment_intent_client_secret": f"{intent_id}_secret_forged"}

    at = open_app(PAGE, **forged)

    assert len(at.error) == 1 and "does not match" in at.error[0].value
    assert not at.success
    assert intent_id not in page_text(at).replace(at.error[0].value, "")
