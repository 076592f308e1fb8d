"""Overview against a demo-seeded sandbox: the KPI row equals what the store holds for the chosen period, and
the charts carry the fixed status colours."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from streamlit.testing.v1 import AppTest

from dashboard.charts import STATUS_COLOURS
from dashboard.domain import OUTCOMES, TEST_LAB_TAG, AlmaIntent, failure_kind, intent_outcome
from dashboard.gateway import RefundRequest, StripeGateway, submission_idempotency_key
from dashboard.money import format_eur
from dashboard.settings import AUTH_WINDOW_SECONDS
from dashboard.store import IntentStore
from tests.conftest import SandboxServer, answer_alma_page
from tests.pages.conftest import create_intent, open_app

DAY = 86_400


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def expected_kpis(intents: list[AlmaIntent]) -> dict[str, str]:
    """The KPI row computed straight from the stored intents, without the analytics module."""
    return {
        "Intents": f"{len(intents):,}",
        "Volume succeeded": format_eur(sum(i.amount_received for i in intents if i.status == "succeeded")),
        "Awaiting customer": f"{sum(i.status == 'requires_action' for i in intents):,}",
        "Expired": f"{sum(failure_kind(i, AUTH_WINDOW_SECONDS) == 'expired' for i in intents):,}",
        "Declined": f"{sum(failure_kind(i, AUTH_WINDOW_SECONDS) == 'declined' for i in intents):,}",
    }


def assert_kpis_match(at: AppTest, intents: list[AlmaIntent]) -> None:
    expected = expected_kpis(intents)
    shown = metrics(at)
    assert {label: shown[label] for label in expected} == expected


def choose_period(at: AppTest, period: str) -> AppTest:
    at.button_group(key="period").set_value(period)
    return at.run()


def test_kpis_equal_the_store_for_each_period(app_env: SandboxServer, store: IntentStore) -> None:
    app_env.reset(seed_demo=80)
    at = open_app()
    stored = store.all_intents()
    assert len(stored) == 80  # the first sync brought the whole demo set
    now = app_env.now()

    for period, days in (("90 d", 90), ("24 h", 1), ("7 d", 7)):
        choose_period(at, period)
        assert_kpis_match(at, [i for i in stored if now - days * DAY <= i.created <= now])
    assert metrics(at)["Intents"] != metrics(choose_period(at, "90 d"))["Intents"]  # the periods differ


def test_custom_period_covers_whole_local_days(app_env: SandboxServer, store: IntentStore) -> None:
    app_env.reset(seed_demo=80)
    at = choose_period(open_app(), "Custom")
    paris = ZoneInfo("Europe/Paris")
    today = datetime.fromtimestamp(app_env.now(), paris).date()
    first, last = today - timedelta(days=3), today - timedelta(days=1)

    at.date_input(key="overview_custom").set_value((first, last)).run()

    start = datetime.combine(first, time(0), paris).timestamp()
    end = datetime.combine(last + timedelta(days=1), time(0), paris).timestamp()
    in_days = [i for i in store.all_intents() if start <= i.created < end]
    assert_kpis_match(at, in_days)
    assert 0 < len(in_days) < 80


def test_conversion_is_succeeded_over_sent_to_alma(app_env: SandboxServer, store: IntentStore) -> None:
    app_env.reset(seed_demo=40)
    at = choose_period(open_app(), "90 d")
    stored = store.all_intents()
    succeeded = sum(i.status == "succeeded" for i in stored)
    # Sent to Alma: the redirect was seen, or the status/failure can only follow it.
    sent = sum(
        i.sent_to_alma_at is not None
        or i.status in ("succeeded", "requires_capture", "processing")
        or failure_kind(i, AUTH_WINDOW_SECONDS) is not None
        for i in stored
    )
    assert metrics(at)["Conversion"] == f"{succeeded / sent:.1%}"


def test_status_chart_speaks_words_with_the_fixed_colours(app_env: SandboxServer, store: IntentStore) -> None:
    app_env.reset(seed_demo=30)
    at = choose_period(open_app(), "90 d")

    status_chart, daily_chart, *_ = chart_specs(at)
    drawn = {intent_outcome(i, AUTH_WINDOW_SECONDS) for i in store.all_intents()}
    for spec in (status_chart, daily_chart):
        colour = spec["encoding"]["color"]
        assert colour["field"] == "outcome"
        assert colour["scale"]["domain"] == [o for o in OUTCOMES if o in drawn]  # the legend: only what is drawn
        assert colour["scale"]["range"] == [STATUS_COLOURS[o].chart for o in colour["scale"]["domain"]]
    assert status_chart["encoding"]["x"]["field"] == "count"


def test_time_to_authorise_counts_every_authorised_intent_of_the_period(
    app_env: SandboxServer, store: IntentStore
) -> None:
    app_env.reset(seed_demo=60)
    at = choose_period(open_app(), "90 d")
    authorised = [i for i in store.all_intents() if i.authorized_at is not None and i.sent_to_alma_at is not None]
    assert authorised  # the demo has approved intents

    chart = at.get("vega_lite_chart")[2]
    spec = json.loads(chart.proto.spec)
    buckets = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()  # Arrow, as sent
    assert buckets["count"].sum() == len(authorised)
    assert spec["encoding"]["color"]["scale"]["domain"] == [o for o in OUTCOMES if o in set(buckets["outcome"])]


def test_daily_chart_switches_to_eur(app_env: SandboxServer) -> None:
    app_env.reset(seed_demo=30)
    at = open_app()
    assert chart_specs(at)[1]["encoding"]["y"]["field"] == "count"

    at.button_group(key="overview_measure").set_value("amount")
    at.run()

    assert chart_specs(at)[1]["encoding"]["y"]["field"] == "signed_eur"  # received above, lost below


def test_recent_failures_carry_their_reason(app_env: SandboxServer, store: IntentStore) -> None:
    app_env.reset(seed_demo=60)
    at = choose_period(open_app(), "90 d")
    failed = {i.id: i for i in store.all_intents() if failure_kind(i, AUTH_WINDOW_SECONDS)}

    table = at.dataframe[0].value
    assert 0 < len(table) <= 10
    for row in table.itertuples():
        intent = failed[row.id]
        assert row.failure_kind == failure_kind(intent, AUTH_WINDOW_SECONDS)
        assert row.outcome == intent_outcome(intent, AUTH_WINDOW_SECONDS) in ("Expired", "Declined")
        assert intent.last_error is not None and row.reason == intent.last_error.message
        assert row.detail == f"intents?intent={row.id}"  # drawn as the id, opening its detail


def test_an_empty_store_says_so(app_env: SandboxServer) -> None:
    at = open_app()

    assert metrics(at)["Intents"] == "0"
    assert any("No Alma intents in this period." in i.value for i in at.info)
    assert not chart_specs(at)


def test_test_lab_intents_stay_out_of_the_figures_until_included(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    create_intent(gateway, 5_000)
    create_intent(gateway, 7_000, metadata=(TEST_LAB_TAG,))
    create_intent(gateway, 9_000, metadata=(TEST_LAB_TAG,))
    at = open_app()

    assert metrics(at)["Intents"] == "1"
    assert [c.value for c in at.caption if "left out" in c.value] == ["2 Test lab intents left out of these figures."]
    assert at.toggle(key="include_test").value is False

    at.toggle(key="include_test").set_value(True).run()
    assert metrics(at)["Intents"] == "3"
    assert not [c.value for c in at.caption if "left out" in c.value]


def paid_intents_with_refunds(gateway: StripeGateway) -> list[str]:
    """Three paid intents of 100 EUR, refunds of 10 and 100 EUR: the issue's money example."""
    paid = []
    for _ in range(3):
        created = create_intent(gateway, 10_000)
        assert created.redirect_url is not None
        answer_alma_page(created.redirect_url, "authorize")
        paid.append(created.intent.id)
    for intent_id, amount in ((paid[0], 1_000), (paid[1], 10_000)):
        key = submission_idempotency_key("refund", intent_id)
        gateway.create_refund(RefundRequest(intent_id, amount, "requested_by_customer"), key)
    return paid


def test_money_tiles_count_by_the_date_money_moved_against_the_previous_period(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    paid_intents_with_refunds(gateway)
    fees = 3 * ((10_000 * 350 + 5_000) // 10_000 + 25)  # the sandbox's default Alma fee, three times
    at = choose_period(open_app(), "24 h")
    tiles = {m.label: (m.value, m.proto.delta) for m in at.metric}
    assert tiles["Gross volume"] == ("€300.00", "+€300.00")  # nothing the day before
    assert tiles["Refunded"] == ("€110.00", "+€110.00")
    assert tiles["Fees"] == (format_eur(fees), "+" + format_eur(fees))
    assert tiles["Net volume"] == (format_eur(30_000 - 11_000 - fees), "+" + format_eur(30_000 - 11_000 - fees))
    assert "date the money moved" in next(m.help for m in at.metric if m.label == "Gross volume")

    app_env.advance(DAY + 3_600)  # a day on: the money is now the previous period's
    at = choose_period(open_app(), "24 h")
    tiles = {m.label: (m.value, m.proto.delta) for m in at.metric}
    assert tiles["Gross volume"] == ("€0.00", "-€300.00")
    assert tiles["Refunded"] == ("€0.00", "-€110.00")
