"""Lists, events and search: newest first, cursors at every page edge, created filters, type filters."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import RETURN_URL, submit_hosted_page

ALMA = {"currency": "eur", "payment_method_types": ["alma"]}


def create_spaced(client: stripe.StripeClient, sandbox: SandboxServer, count: int, gap: int = 10) -> list[str]:
    """`count` intents, `gap` sandbox seconds apart, oldest first."""
    ids = []
    for number in range(count):
        ids.append(client.v1.payment_intents.create({**ALMA, "amount": 10_000 + number}).id)
        sandbox.advance(gap)
    return ids


def page(client: stripe.StripeClient, **params: Any) -> tuple[list[str], bool]:
    listing = client.v1.payment_intents.list(params)
    return [intent.id for intent in listing.data], listing.has_more


def test_newest_first_with_default_limit_of_ten(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = create_spaced(client, sandbox, 12)
    listing = client.v1.payment_intents.list()
    assert [intent.id for intent in listing.data] == ids[::-1][:10]
    assert listing.has_more is True and listing.url == "/v1/payment_intents"


def test_same_second_keeps_creation_order(client: stripe.StripeClient) -> None:
    ids = [client.v1.payment_intents.create({**ALMA, "amount": 10_000}).id for _ in range(5)]
    assert page(client, limit=5) == (ids[::-1], False)


@pytest.mark.parametrize(("limit", "has_more"), [(2, True), (3, False), (4, False)])
def test_has_more_at_the_edge(client: stripe.StripeClient, sandbox: SandboxServer, limit: int, has_more: bool) -> None:
    ids = create_spaced(client, sandbox, 3)
    assert page(client, limit=limit) == (ids[::-1][:limit], has_more)


def test_starting_after_walks_to_the_oldest(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = create_spaced(client, sandbox, 7)[::-1]
    assert page(client, limit=3) == (ids[0:3], True)
    assert page(client, limit=3, starting_after=ids[2]) == (ids[3:6], True)
    assert page(client, limit=3, starting_after=ids[3]) == (ids[4:7], False)  # exactly the rest: no more
    assert page(client, limit=3, starting_after=ids[5]) == (ids[6:7], False)
    assert page(client, limit=3, starting_after=ids[6]) == ([], False)


def test_ending_before_walks_back_to_the_newest(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = create_spaced(client, sandbox, 7)[::-1]
    assert page(client, limit=3, ending_before=ids[6]) == (ids[3:6], True)
    assert page(client, limit=3, ending_before=ids[4]) == (ids[1:4], True)
    assert page(client, limit=3, ending_before=ids[3]) == (ids[0:3], False)  # exactly the rest: no more
    assert page(client, limit=3, ending_before=ids[2]) == (ids[0:2], False)
    assert page(client, limit=3, ending_before=ids[0]) == ([], False)


def test_auto_paging_visits_every_intent_once(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = create_spaced(client, sandbox, 25, gap=1)
    seen = [intent.id for intent in client.v1.payment_intents.list({"limit": 4}).auto_paging_iter()]
    assert seen == ids[::-1]


def test_created_filters(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    ids = create_spaced(client, sandbox, 5)
    created = [client.v1.payment_intents.retrieve(intent_id).created for intent_id in ids]
    newest_first = ids[::-1]
    assert page(client, created=created[2]) == ([ids[2]], False)
    assert page(client, created={"gt": created[2]}) == (newest_first[:2], False)
    assert page(client, created={"gte": created[2]}) == (newest_first[:3], False)
    assert page(client, created={"lt": created[2]}) == (newest_first[3:], False)
    assert page(client, created={"lte": created[2]}) == (newest_first[2:], False)
    assert page(client, created={"gt": created[0], "lt": created[4]}) == ([ids[3], ids[2], ids[1]], False)
    assert page(client, created={"gte": created[0]}, limit=2, starting_after=ids[3]) == ([ids[2], ids[1]], True)


def test_expand_latest_charge_on_a_list(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        {**ALMA, "amount": 20_000, "payment_method_data": {"type": "alma"}, "confirm": True, "return_url": RETURN_URL}
    )
    submit_hosted_page(intent.next_action.redirect_to_url.url, "authorize", installments=2)
    client.v1.payment_intents.create({**ALMA, "amount": 10_000})
    listing = client.v1.payment_intents.list({"expand": ["data.latest_charge", "data.payment_method"]})
    paid = next(item for item in listing.data if item.id == intent.id)
    assert isinstance(paid.latest_charge, stripe.Charge)
    assert paid.latest_charge.payment_method_details.alma.installments.count == 2
    assert paid.payment_method.type == "alma"
    unexpanded = client.v1.payment_intents.list().data
    assert next(item for item in unexpanded if item.id == intent.id).latest_charge == paid.latest_charge.id


def test_events_filtered_by_type_wildcard_and_types(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        {**ALMA, "amount": 20_000, "payment_method_data": {"type": "alma"}, "confirm": True, "return_url": RETURN_URL}
    )
    submit_hosted_page(intent.next_action.redirect_to_url.url, "authorize")

    def types(**params: Any) -> list[str]:
        return [event.type for event in client.v1.events.list(params).data]

    assert types() == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.requires_action",
        "payment_intent.created",
    ]
    assert types(type="charge.succeeded") == ["charge.succeeded"]
    assert types(type="payment_intent.*") == [
        "payment_intent.succeeded",
        "payment_intent.requires_action",
        "payment_intent.created",
    ]
    assert types(types=["payment_intent.created", "charge.*"]) == ["charge.succeeded", "payment_intent.created"]
    assert types(type="*") == types()
    assert types(type="payment_intent.create?") == [] and types(type="charge.[s]ucceeded") == []  # `*` only
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list({"type": "charge.*", "types": ["charge.succeeded"]})


def test_events_cursors_and_created(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    create_spaced(client, sandbox, 5)
    events = client.v1.events.list({"limit": 100}).data
    assert len(events) == 5 and all(event.type == "payment_intent.created" for event in events)
    second_page = client.v1.events.list({"limit": 2, "starting_after": events[1].id})
    assert [event.id for event in second_page.data] == [events[2].id, events[3].id] and second_page.has_more
    back = client.v1.events.list({"limit": 2, "ending_before": events[2].id})
    assert [event.id for event in back.data] == [events[0].id, events[1].id] and not back.has_more
    recent = client.v1.events.list({"created": {"gte": events[1].created}})
    assert [event.id for event in recent.data] == [events[0].id, events[1].id]
    fetched = client.v1.events.retrieve(events[0].id)
    assert fetched.data.object.id == events[0].data.object.id


def test_search_by_status_amount_and_metadata_pages(client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    for number in range(5):
        client.v1.payment_intents.create({**ALMA, "amount": 10_000 * (number + 1), "metadata": {"shop": "lyon"}})
        sandbox.advance(5)
    client.v1.payment_intents.create({**ALMA, "amount": 90_000, "metadata": {"shop": "paris"}})
    found = client.v1.payment_intents.search({"query": "metadata['shop']:'lyon' AND amount>=20000", "limit": 3})
    assert [intent.amount for intent in found.data] == [50_000, 40_000, 30_000]
    assert found.has_more and found.next_page
    rest = client.v1.payment_intents.search(
        {"query": "metadata['shop']:'lyon' AND amount>=20000", "limit": 3, "page": found.next_page}
    )
    assert [intent.amount for intent in rest.data] == [20_000] and rest.has_more is False and rest.next_page is None
    exact = client.v1.payment_intents.search({"query": "metadata['shop']:'lyon' AND amount>=20000", "limit": 4})
    assert len(exact.data) == 4 and exact.has_more is False and exact.next_page is None  # no empty last page
    either = client.v1.payment_intents.search({"query": "amount:90000 OR amount:10000"})
    assert sorted(intent.amount for intent in either.data) == [10_000, 90_000]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.search({"query": "status:"})
    assert caught.value.param == "query"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.search({"query": "amount>0", "page": "not-a-page"})
    assert caught.value.param == "page"
