"""Analytics on hand-built frames of real-looking Alma intents: exact counts, cents and instants."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dashboard import analytics
from dashboard.analytics import Period
from dashboard.domain import (
    CAPTURE_WINDOW_SECONDS,
    EXPIRED_CODE,
    FAILED_CODE,
    OUTCOMES,
    STATUSES,
    TEST_LAB_TAG,
    AlmaIntent,
    LastPaymentError,
    outcome,
)
from dashboard.intent_frame import COLUMNS, frame_from_intents
from dashboard.settings import AUTH_WINDOW_SECONDS

PARIS = ZoneInfo("Europe/Paris")
AUTH_WINDOW = AUTH_WINDOW_SECONDS


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=PARIS).timestamp())


NOW = paris(2026, 11, 29, 12, 0)


def alma_intent(intent_id: str, status: str, amount: int, created: int, **fields: Any) -> AlmaIntent:
    """An Alma intent as the sync stores it; `fields` override the defaults."""
    base: dict[str, Any] = {
        "capture_method": "automatic",
        "payment_method_types": ("alma",),
        "metadata": (("order_id", f"ord_{intent_id[-4:]}"),),
        "description": f"Order {intent_id[-4:]}",
        "updated_at": created,
    }
    return AlmaIntent(id=intent_id, status=status, amount=amount, currency="eur", created=created, **{**base, **fields})


def succeeded(
    intent_id: str, amount: int, created: int, *, received: int | None = None, installments: int = 3, **fields: Any
) -> AlmaIntent:
    sent = fields.pop("sent_to_alma_at", created + 5)
    authorized = fields.pop("authorized_at", created + 95)
    return alma_intent(
        intent_id,
        "succeeded",
        amount,
        created,
        amount_received=amount if received is None else received,
        sent_to_alma_at=sent,
        authorized_at=authorized,
        updated_at=authorized,
        latest_charge_id=f"ch_{intent_id[3:]}",
        charge_method_type="alma",
        installments=installments,
        alma_transaction_id=f"payment_{intent_id[3:]}",
        **fields,
    )


def awaiting(intent_id: str, amount: int, sent: int, **fields: Any) -> AlmaIntent:
    return alma_intent(
        intent_id,
        "requires_action",
        amount,
        sent - 5,
        sent_to_alma_at=sent,
        updated_at=sent,
        redirect_url=f"https://checkout.sandbox.getalma.eu/{intent_id}/redirect",
        **fields,
    )


def failed(intent_id: str, amount: int, *, code: str, sent: int, at: int, message: str | None) -> AlmaIntent:
    return alma_intent(
        intent_id,
        "requires_payment_method",
        amount,
        sent - 5,
        sent_to_alma_at=sent,
        updated_at=at,
        last_error=LastPaymentError(code=code, message=message, type="card_error", payment_method_type="alma"),
    )


def held(intent_id: str, amount: int, authorized: int) -> AlmaIntent:
    return alma_intent(
        intent_id,
        "requires_capture",
        amount,
        authorized - 120,
        capture_method="manual",
        amount_capturable=amount,
        sent_to_alma_at=authorized - 100,
        authorized_at=authorized,
        updated_at=authorized,
        latest_charge_id=f"ch_{intent_id[3:]}",
        charge_method_type="alma",
        installments=4,
        alma_transaction_id=f"payment_{intent_id[3:]}",
    )


def frame_of(*intents: AlmaIntent) -> pd.DataFrame:
    return frame_from_intents(intents, AUTH_WINDOW)


def mixed_intents() -> list[AlmaIntent]:
    """15 intents covering every outcome; 13 reached Alma, 3 succeeded."""
    return [
        succeeded("pi_ok01", 12_000, NOW - 5_000),
        succeeded("pi_ok02", 499_999, NOW - 90_000, installments=2),
        succeeded("pi_ok03", 30_000, NOW - 200_000, received=25_000, capture_method="manual"),
        awaiting("pi_wait1", 6_000, NOW - 600),
        awaiting("pi_wait2", 7_000, NOW - 3_590),
        awaiting("pi_wait3", 8_000, NOW - 4_000),  # window ran out; the sync has not seen it yet
        failed(
            "pi_exp01",
            9_000,
            code=EXPIRED_CODE,
            sent=NOW - 7_200,
            at=NOW - 3_600,
            message="The payment attempt expired.",
        ),
        # Declined code, but only after the full window: the domain calls that an expiry.
        failed(
            "pi_exp02",
            10_000,
            code=FAILED_CODE,
            sent=NOW - 90_000,
            at=NOW - 86_000,
            message="The customer did not complete the payment.",
        ),
        failed(
            "pi_dec01", 11_000, code=FAILED_CODE, sent=NOW - 1_000, at=NOW - 900, message="Alma declined the payment."
        ),
        failed("pi_dec02", 12_500, code=FAILED_CODE, sent=NOW - 300, at=NOW - 200, message=None),
        held("pi_hold1", 80_000, authorized=NOW - 86_400),
        alma_intent(
            "pi_can01",
            "canceled",
            5_500,
            NOW - 9_000,
            sent_to_alma_at=NOW - 8_990,
            canceled_at=NOW - 8_000,
            cancellation_reason="requested_by_customer",
        ),
        alma_intent(
            "pi_can02", "canceled", 5_600, NOW - 9_500, canceled_at=NOW - 9_400, cancellation_reason="abandoned"
        ),
        alma_intent("pi_new01", "requires_payment_method", 5_700, NOW - 50),
        alma_intent("pi_proc1", "processing", 20_000, NOW - 100),  # redirect event missed by the sync
    ]


@pytest.fixture
def mixed() -> pd.DataFrame:
    return frame_of(*mixed_intents())


# --- periods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "seconds"), [("24 h", 86_400), ("7 d", 604_800), ("30 d", 2_592_000), ("90 d", 7_776_000)]
)
def test_rolling_period_ends_just_after_now(choice: str, seconds: int) -> None:
    assert analytics.period_bounds(choice, NOW) == Period(start=NOW - seconds, end=NOW + 1)


def test_custom_period_covers_whole_paris_days_including_a_25_hour_dst_day() -> None:
    period = analytics.period_bounds("Custom", NOW, custom=(date(2026, 10, 25), date(2026, 10, 26)))
    assert period == Period(start=paris(2026, 10, 25), end=paris(2026, 10, 27))
    assert period.end - period.start == 49 * 3600  # clocks went back on the 25th


def test_custom_period_in_another_timezone() -> None:
    period = analytics.period_bounds("Custom", NOW, custom=(date(2026, 11, 29), date(2026, 11, 29)), tz="UTC")
    assert period == Period(start=1_795_910_400, end=1_795_910_400 + 86_400)


@pytest.mark.parametrize(
    ("choice", "custom", "message"),
    [
        ("Custom", None, "start and an end date"),
        ("Custom", (date(2026, 11, 2), date(2026, 11, 1)), "must not be after"),
        ("1 y", None, "Unknown period"),
    ],
)
def test_bad_period_choices_raise_a_readable_error(choice: str, custom: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analytics.period_bounds(choice, NOW, custom=custom)


# --- filters -------------------------------------------------------------------------------------------


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["id"])


def test_no_criteria_keeps_every_row(mixed: pd.DataFrame) -> None:
    assert ids(analytics.filter_intents(mixed)) == ids(mixed)
    assert ids(analytics.filter_intents(mixed, statuses=[], text="  ")) == ids(mixed)


def test_status_filter(mixed: pd.DataFrame) -> None:
    rows = analytics.filter_intents(mixed, statuses=["requires_action", "requires_capture"])
    assert ids(rows) == {"pi_wait1", "pi_wait2", "pi_wait3", "pi_hold1"}


def test_period_filter_is_half_open_on_created() -> None:
    frame = frame_of(
        alma_intent("pi_at_start", "canceled", 5_000, 1_000),
        alma_intent("pi_inside", "canceled", 5_000, 1_500),
        alma_intent("pi_at_end", "canceled", 5_000, 2_000),
    )
    assert ids(analytics.filter_intents(frame, period=Period(1_000, 2_000))) == {"pi_at_start", "pi_inside"}


def test_amount_bounds_are_inclusive_cents(mixed: pd.DataFrame) -> None:
    rows = analytics.filter_intents(mixed, min_cents=9_000, max_cents=11_000)
    assert ids(rows) == {"pi_exp01", "pi_exp02", "pi_dec01"}
    assert ids(analytics.filter_intents(mixed, min_cents=80_000)) == {"pi_ok02", "pi_hold1"}
    assert ids(analytics.filter_intents(mixed, max_cents=5_500)) == {"pi_can01"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PI_WAIT", {"pi_wait1", "pi_wait2", "pi_wait3"}),  # id, any case
        ("order ok02", {"pi_ok02"}),  # description
        ("ORD_old1", {"pi_hold1"}),  # metadata
    ],
)
def test_text_filter_searches_id_description_and_metadata(mixed: pd.DataFrame, text: str, expected: set[str]) -> None:
    assert ids(analytics.filter_intents(mixed, text=text)) == expected


def test_text_filter_is_literal_not_a_regex() -> None:
    frame = frame_of(
        alma_intent("pi_a", "canceled", 5_000, 1, description="Invoice (2026) 50%"),
        alma_intent("pi_b", "canceled", 5_000, 1, description="Invoice x2026y 50"),
        alma_intent("pi_c", "canceled", 5_000, 1, description=None, metadata=()),
    )
    assert ids(analytics.filter_intents(frame, text="(2026)")) == {"pi_a"}
    assert ids(analytics.filter_intents(frame, text="50%")) == {"pi_a"}
    assert ids(analytics.filter_intents(frame, text=".*")) == set()


def test_filters_combine(mixed: pd.DataFrame) -> None:
    rows = analytics.filter_intents(
        mixed,
        statuses=["requires_payment_method"],
        min_cents=10_000,
        period=Period(NOW - 3_600, NOW + 1),
        text="pi_dec",
    )
    assert ids(rows) == {"pi_dec01", "pi_dec02"}


# --- KPIs ----------------------------------------------------------------------------------------------


def test_kpis_on_every_outcome(mixed: pd.DataFrame) -> None:
    assert analytics.kpis(mixed) == analytics.Kpis(
        intents=15,
        succeeded=3,
        succeeded_cents=12_000 + 499_999 + 25_000,  # what was received, not what was asked
        sent_to_alma=13,
        conversion=3 / 13,
        awaiting_customer=3,
        expired=2,
        declined=2,
    )


def test_sent_to_alma_counts_redirects_and_what_can_only_follow_them(mixed: pd.DataFrame) -> None:
    sent = mixed.loc[analytics.sent_to_alma_mask(mixed), "id"]
    assert set(mixed["id"]) - set(sent) == {"pi_can02", "pi_new01"}


def test_conversion_is_none_when_nothing_reached_alma() -> None:
    frame = frame_of(alma_intent("pi_new01", "requires_payment_method", 5_000, NOW))
    result = analytics.kpis(frame)
    assert (result.sent_to_alma, result.conversion, result.intents) == (0, None, 1)
    assert analytics.kpis(frame.iloc[:0]).intents == 0


def test_conversion_counts_success_without_a_seen_redirect() -> None:
    frame = frame_of(succeeded("pi_ok01", 5_000, NOW, sent_to_alma_at=None))
    assert analytics.kpis(frame).conversion == 1.0


def test_cents_sums_stay_exact_integers_beyond_float_precision() -> None:
    # 2**53 cents cannot all be represented as floats; int64 sums must not go through them.
    big = frame_of(succeeded("pi_big1", 2**53 + 1, NOW), succeeded("pi_big2", 1, NOW))
    result = analytics.kpis(big)
    assert result.succeeded_cents == 2**53 + 2
    assert isinstance(result.succeeded_cents, int)
    assert analytics.status_counts(big)["amount_cents"].tolist() == [2**53 + 2]


# --- status counts and daily buckets ----------------------------------------------------------------


def test_status_counts_in_words_in_fixed_order(mixed: pd.DataFrame) -> None:
    """requires_payment_method splits by its failure: Expired, Declined, or Not started without one."""
    counts = analytics.status_counts(mixed)
    assert counts.to_dict("records") == [
        {"outcome": "Succeeded", "count": 3, "amount_cents": 541_999},
        {"outcome": "Awaiting capture", "count": 1, "amount_cents": 80_000},
        {"outcome": "Processing", "count": 1, "amount_cents": 20_000},
        {"outcome": "Awaiting customer", "count": 3, "amount_cents": 21_000},
        {"outcome": "Not started", "count": 1, "amount_cents": 5_700},
        {"outcome": "Expired", "count": 2, "amount_cents": 19_000},
        {"outcome": "Declined", "count": 2, "amount_cents": 23_500},
        {"outcome": "Canceled", "count": 2, "amount_cents": 11_100},
    ]
    assert list(counts.columns) == ["outcome", "count", "amount_cents"]
    assert str(counts["amount_cents"].dtype) == "int64"


def test_daily_buckets_cut_at_paris_midnight() -> None:
    frame = frame_of(
        alma_intent("pi_late", "canceled", 5_000, paris(2026, 11, 28, 23, 59, 59)),
        alma_intent("pi_midnight", "canceled", 6_000, paris(2026, 11, 29, 0, 0, 0)),  # 23:00 UTC the 28th
        succeeded("pi_morning", 7_000, paris(2026, 11, 29, 8, 0)),
        alma_intent("pi_evening", "canceled", 8_000, paris(2026, 11, 29, 23, 59, 59)),
    )
    daily = analytics.daily_by_status(frame)
    rows = daily[["day", "outcome", "count", "amount_cents"]].itertuples(index=False, name=None)
    assert list(rows) == [
        (pd.Timestamp("2026-11-28", tz=PARIS), "Canceled", 1, 5_000),
        (pd.Timestamp("2026-11-29", tz=PARIS), "Succeeded", 1, 7_000),
        (pd.Timestamp("2026-11-29", tz=PARIS), "Canceled", 2, 14_000),
    ]
    in_utc = analytics.daily_by_status(frame, tz="UTC")
    assert in_utc["day"].dt.strftime("%Y-%m-%d").tolist() == ["2026-11-28", "2026-11-29", "2026-11-29"]
    assert in_utc["count"].tolist() == [2, 1, 1]


@pytest.mark.parametrize(("day", "hours"), [((2026, 3, 29), 23), ((2026, 10, 25), 25)])
def test_daily_buckets_follow_dst_days(day: tuple[int, int, int], hours: int) -> None:
    start = paris(*day)
    frame = frame_of(
        alma_intent("pi_first", "canceled", 5_000, start),
        alma_intent("pi_last", "canceled", 5_000, start + hours * 3600 - 1),
        alma_intent("pi_next", "canceled", 5_000, start + hours * 3600),
    )
    daily = analytics.daily_by_status(frame)
    assert daily["day"].tolist() == [
        pd.Timestamp(date(*day), tz=PARIS),
        pd.Timestamp(start + hours * 3600, unit="s", tz=PARIS),
    ]
    assert daily["count"].tolist() == [2, 1]


def test_daily_statuses_follow_the_fixed_order_within_a_day(mixed: pd.DataFrame) -> None:
    one_day = mixed.assign(created=NOW)
    daily = analytics.daily_by_status(one_day)
    assert daily["outcome"].tolist() == [o for o in OUTCOMES if o in set(analytics.outcomes(mixed))]
    assert daily["count"].sum() == 15


def test_daily_money_counts_received_apart_from_lost(mixed: pd.DataFrame) -> None:
    """Received is amount_received (pi_ok03 was captured 250 of 300 EUR); expired and declined amounts are
    lost; canceled, waiting and held amounts are neither."""
    money = analytics.daily_money(mixed.assign(created=NOW))
    assert money[["outcome", "amount_cents"]].to_dict("records") == [
        {"outcome": "Succeeded", "amount_cents": 12_000 + 499_999 + 25_000},
        {"outcome": "Expired", "amount_cents": 9_000 + 10_000},
        {"outcome": "Declined", "amount_cents": 11_000 + 12_500},
    ]
    assert str(money["amount_cents"].dtype) == "int64"
    assert analytics.daily_money(mixed.iloc[:0]).empty


@pytest.mark.parametrize(
    ("status", "kind", "label"),
    [
        ("requires_payment_method", "expired", "Expired"),
        ("requires_payment_method", "declined", "Declined"),
        ("requires_payment_method", None, "Not started"),
        ("requires_action", None, "Awaiting customer"),
        ("requires_capture", None, "Awaiting capture"),
        ("succeeded", None, "Succeeded"),
        ("canceled", None, "Canceled"),
        ("some_new_status", None, "Other"),
    ],
)
def test_outcome_says_a_status_in_words(status: str, kind: str | None, label: str) -> None:
    assert outcome(status, kind) == label
    assert label in OUTCOMES


def test_every_status_has_its_own_outcome() -> None:
    labels = [outcome(status, None) for status in STATUSES]
    assert len(set(labels)) == len(STATUSES) and "Other" not in labels


def test_test_lab_intents_can_be_left_out_of_the_figures() -> None:
    """Only the exact metadata pair makes an intent the lab's; a value that merely reads like it does not."""
    frame = frame_of(
        succeeded("pi_real", 5_000, NOW),
        succeeded("pi_lab", 7_000, NOW, metadata=(("note", "x"), TEST_LAB_TAG)),
        succeeded("pi_fake", 9_000, NOW, metadata=(("note", "x; alma_ops_source=test_lab"),)),
    )
    assert frame["test_lab"].tolist() == [False, True, False]
    finance = analytics.filter_intents(frame, include_test=False)
    assert finance["id"].tolist() == ["pi_real", "pi_fake"]
    assert analytics.kpis(finance).succeeded_cents == 14_000
    assert analytics.filter_intents(frame)["id"].tolist() == ["pi_real", "pi_lab", "pi_fake"]


def test_outcome_filter_picks_words(mixed: pd.DataFrame) -> None:
    picked = analytics.filter_intents(mixed, outcomes_in=["Expired", "Not started"])
    assert set(picked["id"]) == {"pi_exp01", "pi_exp02", "pi_new01"}


# --- failures, expiry and capture lists -------------------------------------------------------------


def test_recent_failures_newest_first_with_a_reason(mixed: pd.DataFrame) -> None:
    failures = analytics.recent_failures(mixed, limit=3)
    assert failures[["id", "failure_kind", "reason"]].to_dict("records") == [
        {"id": "pi_dec02", "failure_kind": "declined", "reason": FAILED_CODE},  # no message: the code
        {"id": "pi_dec01", "failure_kind": "declined", "reason": "Alma declined the payment."},
        {"id": "pi_exp01", "failure_kind": "expired", "reason": "The payment attempt expired."},
    ]
    assert len(analytics.recent_failures(mixed)) == 4


def test_awaiting_customer_soonest_first_with_time_left(mixed: pd.DataFrame) -> None:
    waiting = analytics.awaiting_customer(mixed, NOW)
    assert waiting[["id", "seconds_left"]].to_dict("records") == [
        {"id": "pi_wait3", "seconds_left": 0},  # overdue is clipped, not negative
        {"id": "pi_wait2", "seconds_left": 10},
        {"id": "pi_wait1", "seconds_left": 3_000},
    ]
    assert waiting["fraction_elapsed"].tolist() == [1.0, 3_590 / 3_600, 600 / 3_600]
    assert waiting["urgency"].tolist() == ["ending", "ending", "calm"]
    assert waiting["redirect_url"].str.startswith("https://checkout.sandbox.getalma.eu/").all()


def test_awaiting_customer_without_a_known_redirect_sorts_last() -> None:
    frame = frame_of(
        awaiting("pi_known", 5_000, NOW - 60), alma_intent("pi_unknown", "requires_action", 5_000, NOW - 30)
    )
    waiting = analytics.awaiting_customer(frame, NOW)
    assert waiting["id"].tolist() == ["pi_known", "pi_unknown"]
    assert waiting["seconds_left"].isna().tolist() == [False, True]
    assert waiting["urgency"].isna().tolist() == [False, True]


def test_countdown_urgency_bands_by_share_of_the_window_gone() -> None:
    shares = pd.Series([0.0, 0.49, 0.5, 0.83, 5 / 6, 1.0, None], dtype="Float64")
    urgency = analytics.countdown_urgency(shares)
    assert urgency.tolist()[:6] == ["calm", "calm", "soon", "soon", "ending", "ending"]
    assert pd.isna(urgency.iloc[6])


def test_recently_expired_and_declines_are_apart(mixed: pd.DataFrame) -> None:
    expired = analytics.recently_expired(mixed, NOW, within_seconds=3_600)
    assert expired[["id", "updated_at", "waited_seconds"]].to_dict("records") == [
        {"id": "pi_exp01", "updated_at": NOW - 3_600, "waited_seconds": 3_600},
    ]
    two_days = analytics.recently_expired(mixed, NOW, within_seconds=2 * 86_400)
    assert two_days["id"].tolist() == ["pi_exp01", "pi_exp02"]
    assert two_days["waited_seconds"].tolist() == [3_600, 4_000]
    declines = analytics.recent_declines(mixed, NOW, within_seconds=3_600)
    assert declines[["id", "waited_seconds"]].to_dict("records") == [
        {"id": "pi_dec02", "waited_seconds": 100},
        {"id": "pi_dec01", "waited_seconds": 100},
    ]
    assert analytics.recent_declines(mixed, NOW, within_seconds=500)["id"].tolist() == ["pi_dec02"]


def test_awaiting_capture_with_deadline(mixed: pd.DataFrame) -> None:
    extra = frame_of(held("pi_hold0", 6_000, authorized=NOW - 7 * 86_400 + 60))
    capture = analytics.awaiting_capture(pd.concat([mixed, extra], ignore_index=True), NOW, 86_400)
    shown = capture[["id", "amount_capturable", "capture_deadline", "seconds_to_deadline", "due_soon"]]
    assert shown.to_dict("records") == [
        {
            "id": "pi_hold0",
            "amount_capturable": 6_000,
            "capture_deadline": NOW + 60,
            "seconds_to_deadline": 60,
            "due_soon": True,
        },
        {
            "id": "pi_hold1",
            "amount_capturable": 80_000,
            "capture_deadline": NOW - 86_400 + CAPTURE_WINDOW_SECONDS,
            "seconds_to_deadline": CAPTURE_WINDOW_SECONDS - 86_400,
            "due_soon": False,
        },
    ]
    wider = analytics.awaiting_capture(pd.concat([mixed, extra], ignore_index=True), NOW, CAPTURE_WINDOW_SECONDS)
    assert wider["due_soon"].tolist() == [True, True]


def test_time_to_authorise_and_its_buckets(mixed: pd.DataFrame) -> None:
    durations = analytics.time_to_authorise(mixed)
    assert dict(zip(durations["id"], durations["seconds"], strict=True)) == {
        "pi_ok01": 90,
        "pi_ok02": 90,
        "pi_ok03": 90,
        "pi_hold1": 100,
    }
    buckets = analytics.time_to_authorise_buckets(durations, bucket_seconds=60)
    assert buckets.to_dict("records") == [
        {"bucket_start": 60, "bucket_end": 120, "outcome": "Succeeded", "count": 3},
        {"bucket_start": 60, "bucket_end": 120, "outcome": "Awaiting capture", "count": 1},
    ]


# --- table and export --------------------------------------------------------------------------------


def test_intents_table_is_display_ready(mixed: pd.DataFrame) -> None:
    table = analytics.intents_table(mixed, NOW)
    assert list(table["id"]) == list(mixed["id"])  # in the store's order
    row = table.set_index("id").loc["pi_ok02"]
    assert (row["amount_eur"], row["amount_cents"], row["installments"]) == (Decimal("4999.99"), 499_999, 2)
    assert str(row["amount_received_eur"]) == "4999.99" and row["amount_capturable_cents"] == 0
    held_row = table.set_index("id").loc["pi_hold1"]
    assert (held_row["amount_capturable_eur"], held_row["amount_received_eur"]) == (Decimal("800.00"), Decimal("0.00"))
    assert row["created_at"] == pd.Timestamp(NOW - 90_000, unit="s", tz=PARIS)
    assert str(table["created_at"].dt.tz) == "Europe/Paris"
    expires_in = table.set_index("id")["expires_in_seconds"].dropna().to_dict()
    assert expires_in == {"pi_wait1": 3_000, "pi_wait2": 10, "pi_wait3": 0}
    assert table.set_index("id").loc["pi_dec02", "reason"] == FAILED_CODE


def parse_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_csv_export_round_trips_exact_rows_and_cents(mixed: pd.DataFrame) -> None:
    awkward = alma_intent(
        "pi_quote",
        "canceled",
        123_456,
        NOW,
        description='Line 1, "quoted"\nline 2',
        metadata=(("a", "1"), ("b", "x;y")),
    )
    chosen = analytics.filter_intents(
        pd.concat([mixed, frame_of(awkward)], ignore_index=True), statuses=["succeeded", "canceled", "requires_action"]
    )
    money = pd.DataFrame({"fee": [1_075], "net": [23_925], "refunded": [5_000]}, index=["pi_ok03"])
    metadata = {"pi_quote": {"a": "1", "b": "x;y"}, "pi_ok01": {"order_id": "A-1"}}
    rows = parse_csv(analytics.csv_export(chosen, money=money, metadata=metadata, metadata_keys=["a", "b", "order_id"]))
    assert [r["id"] for r in rows] == chosen["id"].tolist()
    assert [int(r["amount_cents"]) for r in rows] == chosen["amount"].tolist()
    by_id = {r["id"]: r for r in rows}
    assert (by_id["pi_ok02"]["amount_eur"], by_id["pi_ok02"]["amount_received_eur"]) == ("4999.99", "4999.99")
    assert (by_id["pi_ok03"]["amount_eur"], by_id["pi_ok03"]["amount_received_cents"]) == ("300.00", "25000")
    assert by_id["pi_quote"]["amount_eur"] == "1234.56"
    assert by_id["pi_quote"]["description"] == 'Line 1, "quoted"\nline 2'
    assert (by_id["pi_quote"]["metadata.a"], by_id["pi_quote"]["metadata.b"]) == ("1", "x;y")
    assert (by_id["pi_quote"]["metadata.order_id"], by_id["pi_ok01"]["metadata.order_id"]) == ("", "A-1")
    assert [by_id["pi_ok03"][f"{c}_eur"] for c in ("fee", "net", "refunded")] == ["10.75", "239.25", "50.00"]
    assert [by_id["pi_ok03"][f"{c}_cents"] for c in ("fee", "net", "refunded")] == ["1075", "23925", "5000"]
    assert by_id["pi_quote"]["fee_eur"] == by_id["pi_quote"]["fee_cents"] == ""  # no money moved
    assert datetime.fromisoformat(by_id["pi_ok01"]["created"]).timestamp() == NOW - 5_000
    assert by_id["pi_ok01"]["created"].endswith("+01:00")
    assert by_id["pi_wait1"]["expires_at"] == "2026-11-29T12:50:00+01:00"
    assert by_id["pi_ok01"]["expires_at"] == ""


def test_csv_export_has_stable_columns_and_no_redirect_links(mixed: pd.DataFrame) -> None:
    data = analytics.csv_export(mixed)
    header = data.decode().splitlines()[0].split(",")
    assert tuple(header) == analytics.CSV_COLUMNS
    assert "redirect_url" not in header and b"checkout.sandbox.getalma.eu" not in data
    assert not [c for c in header if "secret" in c]
    assert parse_csv(analytics.csv_export(mixed.iloc[:0])) == []


def test_csv_export_defuses_formulas_in_text_but_never_in_amounts() -> None:
    hostile = alma_intent(
        "pi_evil",
        "canceled",
        5_000,
        NOW,
        description='=HYPERLINK("http://evil.example","Refund")',
        metadata=(("note", "x"),),
        cancellation_reason="abandoned",
    )
    frame = frame_of(
        hostile,
        alma_intent("pi_plus", "canceled", 5_000, NOW, description="+33 6 12 34 56 78"),
        alma_intent("pi_at", "canceled", 5_000, NOW, description="@SUM(A1:A9)"),
        alma_intent("pi_tab", "canceled", 5_000, NOW, description="\t=1+1"),
        alma_intent("pi_cr", "canceled", 5_000, NOW, description="\r=1+1"),
        alma_intent("pi_minus", "canceled", 5_000, NOW, description="-2+3", metadata=(("=cmd", "|calc"),)),
        alma_intent("pi_fine", "canceled", 5_000, NOW, description="Order 1 = paid"),
    )
    # A negative amount would be a bug upstream, but it must still leave as a number, not as text.
    frame.loc[frame["id"] == "pi_minus", "amount_received"] = -1_250
    metadata = {"pi_evil": {"note": "=1+1"}, "pi_minus": {"=cmd": "|calc"}}
    rows = {
        r["id"]: r for r in parse_csv(analytics.csv_export(frame, metadata=metadata, metadata_keys=["=cmd", "note"]))
    }

    assert rows["pi_evil"]["description"] == """'=HYPERLINK("http://evil.example","Refund")"""
    assert rows["pi_plus"]["description"] == "'+33 6 12 34 56 78"
    assert rows["pi_at"]["description"] == "'@SUM(A1:A9)"
    assert rows["pi_tab"]["description"] == "'\t'=1+1"  # the tab is a cell start of its own
    assert rows["pi_cr"]["description"] == "'\r'=1+1"
    assert rows["pi_minus"]["description"] == "'-2+3" and rows["pi_minus"]["metadata.=cmd"] == "|calc"
    assert rows["pi_evil"]["metadata.note"] == "'=1+1"  # a metadata column is text like the others
    assert rows["pi_fine"]["description"] == "Order 1 = paid"  # only a leading character is a formula
    assert (rows["pi_minus"]["amount_received_eur"], rows["pi_minus"]["amount_received_cents"]) == ("-12.50", "-1250")
    assert rows["pi_evil"]["created"][0].isdigit() and rows["pi_evil"]["cancellation_reason"] == "abandoned"


@pytest.mark.parametrize(
    ("text", "defused"),
    [
        ("x;=1+1;", "x;'=1+1;"),  # French Excel splits on ";": the second cell would run
        ("x,=1+1", "x,'=1+1"),
        ("x\t@SUM(A1)", "x\t'@SUM(A1)"),
        ("line\n+33 6", "line\n'+33 6"),
        ("line\r\n-1", "line\r\n'-1"),
        ('x; "=1+1"', 'x;\' "=1+1"'),  # behind spaces and a quote, too
        ("a=1; b=2; =cmd", "a=1; b=2;' =cmd"),  # metadata_text's own separator
        ("Order 1 = paid; thanks", "Order 1 = paid; thanks"),
        ("a-b, c+d", "a-b, c+d"),
    ],
)
def test_csv_defuses_a_formula_after_every_separator_a_spreadsheet_may_split_on(text: str, defused: str) -> None:
    """Was: only the start of a field was looked at."""
    assert analytics.defuse_formulas(pd.Series([text, None], dtype="string")).tolist() == [defused, pd.NA]
    row = parse_csv(analytics.csv_export(frame_of(alma_intent("pi_x", "canceled", 5_000, NOW, description=text))))[0]
    assert row["description"] == defused


def test_csv_text_columns_are_every_free_text_column() -> None:
    assert set(analytics.CSV_TEXT_COLUMNS) >= {
        "description",
        "customer_name",
        "error_message",
        "id",
        "alma_transaction_id",
    }
    assert not [c for c in analytics.CSV_TEXT_COLUMNS if c.endswith(("_eur", "_cents"))]
    assert "created" not in analytics.CSV_TEXT_COLUMNS and "installments" not in analytics.CSV_TEXT_COLUMNS


def test_summer_instants_export_with_the_summer_offset() -> None:
    frame = frame_of(alma_intent("pi_summer", "canceled", 5_000, paris(2026, 7, 14, 9, 30)))
    assert parse_csv(analytics.csv_export(frame))[0]["created"] == "2026-07-14T09:30:00+02:00"


def test_every_function_accepts_the_store_schema_when_empty() -> None:
    empty = frame_of()
    assert list(empty.columns) == list(COLUMNS)
    assert analytics.status_counts(empty).empty and analytics.daily_by_status(empty).empty
    assert analytics.awaiting_customer(empty, NOW).empty and analytics.awaiting_capture(empty, NOW, 86_400).empty
    assert analytics.recent_failures(empty).empty and analytics.recently_expired(empty, NOW, 60).empty
    assert analytics.intents_table(empty, NOW).empty
    assert analytics.time_to_authorise_buckets(analytics.time_to_authorise(empty)).empty
