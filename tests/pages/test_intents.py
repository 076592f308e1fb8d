"""Intents page against a demo-seeded sandbox: each filter narrows the table to what the store says, the CSV
is exactly the filtered rows, and the detail (chosen by id, as a keyboard user does) shows what ops need."""

from __future__ import annotations

import csv
import io
import re

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import audit
from dashboard.audit import AuditFilter
from dashboard.domain import AlmaIntent, failure_kind, intent_outcome
from dashboard.gateway import CreateIntentRequest, StripeGateway, submission_idempotency_key
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import IntentStore
from tests.conftest import SandboxServer
from tests.pages.conftest import PUBLIC_URL, Download, create_intent, open_app, press_hosted_button

PAGE = "app_pages/intents.py"


@pytest.fixture
def demo(app_env: SandboxServer, store: IntentStore) -> tuple[AppTest, list[AlmaIntent]]:
    app_env.reset(seed_demo=60)
    at = open_app(PAGE)
    return at, store.all_intents()


def table_ids(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["id"])


def summary(at: AppTest) -> str:
    return next(c.value for c in at.caption if "the filters" in c.value)


def test_the_table_pages_through_every_stored_intent_newest_first(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    newest_first = [i.id for i in sorted(stored, key=lambda i: (i.created, i.id), reverse=True)]
    assert table_ids(at) == newest_first[:50] and "60 intents match the filters (rows 1–50)" in summary(at)
    assert at.button(key="intents_previous").disabled
    at.button(key="intents_next").click().run()
    assert table_ids(at) == newest_first[50:] and "(rows 51–60)" in summary(at)
    assert at.button(key="intents_next").disabled
    at.button(key="intents_previous").click().run()
    assert table_ids(at) == newest_first[:50]
    at.button(key="intents_next").click().run()
    at.multiselect(key="intents_status").set_value(["Succeeded"]).run()  # a new view starts at its first page
    assert table_ids(at) == [i for i in newest_first if i in {s.id for s in stored if s.status == "succeeded"}][:50]


def test_the_shown_page_stays_while_the_clock_moves(
    demo: tuple[AppTest, list[AlmaIntent]], app_env: SandboxServer
) -> None:
    """Was: the rolling period's bounds, which move every second, were part of the view, so a rerun a second
    later went back to the first page."""
    at, _ = demo
    at.button(key="intents_next").click().run()
    second_page = table_ids(at)
    app_env.advance(125)  # the clock moves on by two minutes and more
    at.run()
    assert table_ids(at) == second_page and "(rows 51–60)" in summary(at)


def test_the_database_orders_by_amount_across_pages(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    at.selectbox(key="intents_order").set_value("Smallest amount").run()
    cheapest_first = [i.id for i in sorted(stored, key=lambda i: (i.amount, i.id))]
    assert table_ids(at) == cheapest_first[:50]
    at.button(key="intents_next").click().run()
    assert table_ids(at) == cheapest_first[50:]


def test_the_table_shows_six_columns_until_more_are_picked(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, _ = demo
    shown = list(at.dataframe[0].proto.column_order)
    assert shown == ["created_at", "customer_name", "amount_eur", "outcome", "reason", "installments"]
    at.multiselect(key="intents_columns").select("id").run()
    assert list(at.dataframe[0].proto.column_order)[-1] == "id"


def test_status_filter(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    at.multiselect(key="intents_status").set_value(["Succeeded", "Awaiting customer"]).run()

    expected = {i.id for i in stored if i.status in ("succeeded", "requires_action")}
    assert set(table_ids(at)) == expected
    assert 0 < len(expected) < len(stored)


def test_amount_range_filter_in_eur(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    at.text_input(key="intents_min").input("200")
    at.text_input(key="intents_max").input("750,50").run()

    expected = {i.id for i in stored if 20_000 <= i.amount <= 75_050}
    assert set(table_ids(at)) == expected
    assert 0 < len(expected) < len(stored)


def test_a_bad_amount_bound_is_reported_and_ignored(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    at.text_input(key="intents_min").input("lots").run()

    assert [e.value for e in at.error] == ["`lots` is not a number."]
    assert f"{len(stored)} intents match the filters" in summary(at)
    at.text_input(key="intents_min").input("").run()
    at.text_input(key="intents_max").input("99999999999").run()  # beyond any amount: not Alma's bounds
    assert [e.value for e in at.error] == ["Stripe amounts are €0.01 to €999,999.99; got €99,999,999,999.00."]


def test_text_filter_matches_id_description_and_metadata(app_env: SandboxServer, gateway: StripeGateway) -> None:
    wanted = create_intent(gateway, 7000, description="Blue sofa", metadata=(("order_id", "ZX-42"),)).intent
    create_intent(gateway, 8000, description="Red chair", metadata=(("order_id", "QQ-7"),))
    at = open_app(PAGE)

    for text in ("blue SOFA", "zx-42", wanted.id[-10:]):
        at.text_input(key="intents_text").input(text).run()
        assert table_ids(at) == [wanted.id], text


def test_period_filter(demo: tuple[AppTest, list[AlmaIntent]], app_env: SandboxServer) -> None:
    at, stored = demo
    at.button_group(key="period").set_value("24 h").run()

    now = app_env.now()
    expected = {i.id for i in stored if i.created >= now - 86_400}
    assert set(table_ids(at)) == expected
    assert 0 < len(expected) < len(stored)


def test_csv_is_exactly_the_filtered_rows(demo: tuple[AppTest, list[AlmaIntent]], downloads: list[Download]) -> None:
    """The CSV is built only on click (deferred); record the builder the page hands to Streamlit and run it."""
    at, stored = demo
    at.multiselect(key="intents_status").set_value(["Expired", "Declined", "Not started"]).run()

    text = downloads[-1].build().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] and sorted(r["id"] for r in rows) == sorted(table_ids(at))
    # Named after what it holds: the statuses and the period's local days (90 d by default here).
    assert re.fullmatch(
        r"alma-intents-expired-declined-not-started-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.csv", downloads[-1].file_name
    )
    by_id = {i.id: i for i in stored}
    for row in rows:
        intent = by_id[row["id"]]
        assert int(row["amount_cents"]) == intent.amount
        assert row["amount_eur"] == f"{intent.amount // 100}.{intent.amount % 100:02d}"
        assert row["failure_kind"] == (failure_kind(intent, AUTH_WINDOW_SECONDS) or "")
        assert row["outcome"] == intent_outcome(intent, AUTH_WINDOW_SECONDS)
    assert "secret" not in text


def test_nothing_to_export_means_no_export(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, _ = demo
    assert not at.get("download_button")[0].proto.disabled
    at.text_input(key="intents_text").input("no intent says this").run()
    assert table_ids(at) == [] and at.get("download_button")[0].proto.disabled


def test_detail_by_id_shows_error_events_and_no_secret(app_env: SandboxServer, gateway: StripeGateway) -> None:
    created = create_intent(gateway, 12_345, description="Declined on purpose")
    press_hosted_button(created.redirect_url or "", "Fail test payment")
    at = open_app(PAGE, intent=created.intent.id)

    assert [h.value for h in at.subheader] == [f"Intent `{created.intent.id}`"]
    details = " ".join(m.value for m in at.markdown)
    assert ":red-badge[Declined] `requires_payment_method`" in details
    assert "€123.45" in details and "Declined on purpose" in details
    assert any("payment_intent_payment_attempt_failed" in e.value for e in at.error)
    timeline = at.dataframe[1].value
    events = list(timeline["Event"])
    assert events[-1] == "payment_intent.payment_failed" and "payment_intent.requires_action" in events
    steps = list(timeline["What"])
    assert steps[0] == "Created" and "Sent to Alma" in steps
    assert steps[-1] == "Declined (payment_intent_payment_attempt_failed)"
    assert "client_secret" not in str(at.json[0].value)


def test_detail_of_an_authorised_intent_shows_installments_and_alma_transaction(
    app_env: SandboxServer,
    gateway: StripeGateway,
) -> None:
    created = create_intent(gateway, 40_000)
    press_hosted_button(created.redirect_url or "", "Authorize test payment")
    intent = gateway.retrieve_intent(created.intent.id)
    at = open_app(PAGE, intent=intent.id)

    details = " ".join(m.value for m in at.markdown)
    assert f"**Installments:** {intent.installments}" in details
    assert intent.alma_transaction_id and intent.alma_transaction_id in details


def test_waiting_intent_offers_its_approve_page(app_env: SandboxServer, gateway: StripeGateway) -> None:
    created = create_intent(gateway, 9_000)
    at = open_app(PAGE, intent=created.intent.id)

    [link] = at.get("link_button")
    assert (link.proto.label, link.proto.url) == ("Open approve/decline page", created.redirect_url)
    assert "left)" in " ".join(m.value for m in at.markdown)  # time left on Alma's page


def test_choosing_an_id_opens_its_detail(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    at.selectbox(key="intent").set_value(stored[5].id).run()

    assert [h.value for h in at.subheader] == [f"Intent `{stored[5].id}`"]


def test_an_intent_known_from_the_first_sync_still_has_a_timeline(demo: tuple[AppTest, list[AlmaIntent]]) -> None:
    at, stored = demo
    # A manually captured one ends "Captured" rather than "Succeeded": take one Alma captured by itself.
    done = next(i for i in stored if i.status == "succeeded" and i.capture_method != "manual")
    at.selectbox(key="intent").set_value(done.id).run()

    # Found by its column: a refunded intent shows its refunds table before the timeline.
    timeline = next(table.value for table in at.dataframe if "What" in table.value.columns)
    steps = list(timeline["What"])
    assert steps[0] == "Created"
    assert any(step.startswith("Authorised by Alma") for step in steps) and "Succeeded" in steps


def test_held_intent_shows_capturable_amount_and_capture_deadline(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    created = create_intent(gateway, 21_000, capture_method="manual")
    press_hosted_button(created.redirect_url or "", "Authorize test payment")
    at = open_app(PAGE, intent=created.intent.id)

    details = " ".join(m.value for m in at.markdown)
    assert "**Capturable:** €210.00" in details and "**Received:** €0.00" in details
    assert "**Capture method:** manual" in details
    assert re.search(r"\*\*Capture deadline:\*\* \S+ \S+ \S+ \((7 d 0|6 d 23) h left\)", details), details


def test_an_unknown_id_says_so(app_env: SandboxServer) -> None:
    at = open_app(PAGE, intent="pi_doesnotexist")

    assert any("No Alma intent `pi_doesnotexist`" in w.value for w in at.warning)
    assert not at.subheader


def paid_with_customer(gateway: StripeGateway, amount: int, name: str, email: str, order: str) -> AlmaIntent:
    request = CreateIntentRequest(
        amount, "automatic", None, (("order_id", order),), PUBLIC_URL + "/return", name, email
    )
    created = gateway.create_alma_intent(request, submission_idempotency_key("test-setup", order))
    press_hosted_button(created.redirect_url or "", "Authorize test payment")
    return created.intent


def test_search_finds_a_customer_by_email_name_order_or_amount(app_env: SandboxServer, gateway: StripeGateway) -> None:
    lea = paid_with_customer(gateway, 12_050, "Léa Martin", "lea@example.com", "ORD-7")
    paid_with_customer(gateway, 9_900, "Bob Stone", "bob@example.org", "ORD-8")
    at = open_app(PAGE)
    for needle in ("LEA@example", "martin", "ORD-7", "120.50", "120,5"):
        at.text_input(key="intents_text").input(needle).run()
        assert table_ids(at) == [lea.id], needle
    row = at.dataframe[0].value.iloc[0]
    assert (row["customer_name"], row["customer_email"]) == ("Léa Martin", "lea@example.com")


def test_an_operator_refunds_part_of_a_payment_once_after_confirming_the_amount_in_words(
    app_env: SandboxServer, gateway: StripeGateway, store: IntentStore
) -> None:
    intent = paid_with_customer(gateway, 10_000, "Léa Martin", "lea@example.com", "ORD-9")
    at = open_app(PAGE, intent=intent.id)
    amount = at.text_input(key=f"intents_refund_amount:{intent.id}")
    assert amount.value == "100.00"  # everything left, by default
    amount.input("1,000").run()
    assert any("could" in e.value.lower() or "ambiguous" in e.value.lower() for e in at.error)  # never guessed
    at.text_input(key=f"intents_refund_amount:{intent.id}").input("25,50").run()
    at.button(key=f"intents_refund_ask:{intent.id}").click().run()
    assert [w.value for w in at.warning] == [
        "Refund €25.50 of the €100.00 left on this payment; €74.50 stays refundable."
    ]
    confirm = at.button(key=f"intents_refund_confirm:{intent.id}")
    confirm.click().run()
    assert any("Refund of €25.50 sent (pending)" in s.value for s in at.success)
    [refund] = store.refunds_of(intent.id)
    assert (refund.amount, refund.status, refund.reason) == (2_550, "pending", "requested_by_customer")
    refunds = at.dataframe[1].value
    assert list(refunds["Amount"]) == ["€25.50"] and list(refunds["Status"]) == ["Pending"]
    details = " ".join(m.value for m in at.markdown)
    fee = (10_000 * 350 + 5_000) // 10_000 + 25
    assert f"**Fee:** €{fee / 100:.2f}" in details and "**Refunded:** €25.50" in details
    assert "Refund requested" in list(at.dataframe[2].value["What"])
    assert "**Customer:** `Léa Martin`" in details
    [entry] = store.audit_entries(AuditFilter(actions=(audit.REFUND,)))
    assert (entry.intent_id, entry.amount, entry.outcome) == (intent.id, 2_550, audit.OK)
