"""The store's bounded queries give exactly what analytics gives on the whole frame, on SQLite and PostgreSQL,
for a demo account synced from the sandbox (every status, failures, DST changes within the 90 days)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pandas as pd
import pytest

from dashboard import analytics
from dashboard.gateway import StripeGateway
from dashboard.intent_export import intents_csv
from dashboard.local_sandbox import LocalSandbox
from dashboard.money import format_eur
from dashboard.settings import Settings
from dashboard.store import IntentFilter, IntentStore, PageKey
from dashboard.sync import AlmaSync

WINDOW = 3600
DAY = 86_400


@pytest.fixture
def demo(sandbox: LocalSandbox, database: str) -> Iterator[tuple[IntentStore, pd.DataFrame, int]]:
    """A store holding a synced demo account, the whole frame (what pages used to load), and now."""
    sandbox.reset(seed_demo=400)
    store = IntentStore(database, WINDOW)
    AlmaSync(StripeGateway(Settings(), api_base=sandbox.base_url), store, sandbox).sync_once()
    yield store, store.intents_frame(), sandbox.now()
    store.close()


def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True))


def filters(frame: pd.DataFrame, now: int) -> list[tuple[IntentFilter, dict[str, object]]]:
    """Store filters and the analytics.filter_intents arguments that mean the same."""
    named = frame.dropna(subset=["customer_name", "customer_email"]).iloc[0]
    customer, email = str(named["customer_name"]).split()[-1].upper(), str(named["customer_email"])[2:]
    price = format_eur(int(frame["amount"].iloc[0])).removeprefix("€")
    week = analytics.Period(now - 7 * DAY, now + 1)
    return [
        (IntentFilter(), {}),
        (IntentFilter(created_gte=week.start, created_lt=week.end), {"period": week}),
        (IntentFilter(statuses=("succeeded", "requires_capture")), {"statuses": ["succeeded", "requires_capture"]}),
        (IntentFilter(min_cents=10_000, max_cents=60_000), {"min_cents": 10_000, "max_cents": 60_000}),
        (IntentFilter(text="ORDER"), {"text": "ORDER"}),
        (IntentFilter(text="%_"), {"text": "%_"}),  # LIKE's wildcards are literal here
        (IntentFilter(include_test=False), {"include_test": False}),
        (IntentFilter(outcomes=("Expired", "Not started")), {"outcomes_in": ["Expired", "Not started"]}),
        (IntentFilter(outcomes=("Declined", "Awaiting capture")), {"outcomes_in": ["Declined", "Awaiting capture"]}),
        (IntentFilter(outcomes=("Other",)), {"outcomes_in": ["Other"]}),
        (IntentFilter(text=customer), {"text": customer}),
        (IntentFilter(text=email), {"text": email}),
        (IntentFilter(text=price), {"text": price}),  # an amount as people type it
    ]


def test_filters_count_and_pages_match_analytics(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, now = demo
    assert len(frame) == 400
    for where, arguments in filters(frame, now):
        expected = analytics.filter_intents(frame, **arguments)  # type: ignore[arg-type]
        assert store.count_intents(where) == len(expected), where
        same(store.intents_frame(where=where), expected)
        for sort, descending in (("created", True), ("amount", False)):
            pages, after = [], None
            while True:
                page = store.intents_page(where, sort=sort, descending=descending, after=after, limit=37)  # type: ignore[arg-type]
                assert page.total == len(expected)
                pages.append(page.rows)
                if page.next_key is None:
                    break
                after = page.next_key
            walked = pd.concat(pages) if pages else expected.head(0)
            ordered = expected.sort_values([sort, "id"], ascending=not descending)
            same(walked, ordered)
        same(
            pd.concat([*store.intent_batches(where, batch=50), frame.head(0)]),
            expected.sort_values(["created", "id"], ascending=False),
        )


def test_a_page_key_from_a_later_page_starts_there(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, _ = demo
    ordered = frame.sort_values(["created", "id"], ascending=False).reset_index(drop=True)
    key = PageKey(int(ordered.loc[99, "created"]), str(ordered.loc[99, "id"]))
    same(store.intents_page(after=key, limit=10).rows, ordered.iloc[100:110])


def test_overview_figures_match_analytics(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, now = demo
    for days in (1, 7, 30, 90):
        period = analytics.Period(now - days * DAY, now + 1)
        where = IntentFilter(created_gte=period.start, created_lt=period.end)
        rows = analytics.filter_intents(frame, period=period)
        for tz in ("Europe/Paris", "America/New_York", "Asia/Kolkata"):
            figures = store.overview_figures(where, tz)
            assert figures.kpis == analytics.kpis(rows), days
            same(figures.status_counts, analytics.status_counts(rows))
            same(figures.time_to_authorise, analytics.time_to_authorise_buckets(analytics.time_to_authorise(rows)))
            same(figures.daily_by_status, analytics.daily_by_status(rows, tz=tz))
            same(figures.daily_money, analytics.daily_money(rows, tz=tz))
        failures = store.intents_frame(
            where=IntentFilter(created_gte=period.start, created_lt=period.end, failure_kinds=("expired", "declined")),
            newest="updated_at",
            limit=10,
        )
        same(analytics.recent_failures(failures), analytics.recent_failures(rows))
    nothing = store.overview_figures(IntentFilter(created_gte=now + DAY, created_lt=now + 2 * DAY), "Europe/Paris")
    assert nothing.kpis == analytics.kpis(frame.head(0))
    for part in ("status_counts", "daily_by_status", "daily_money", "time_to_authorise"):
        assert getattr(nothing, part).empty, part


def test_expiry_watch_lists_match_analytics(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, now = demo
    waiting = store.intents_frame(where=IntentFilter(statuses=("requires_action",)))
    same(analytics.awaiting_customer(waiting, now), analytics.awaiting_customer(frame, now))
    held = store.intents_frame(where=IntentFilter(statuses=("requires_capture",)))
    same(analytics.awaiting_capture(held, now, DAY), analytics.awaiting_capture(frame, now, DAY))
    # What the page draws: the soonest few, and the counts of all.
    soonest = store.intents_frame(where=IntentFilter(statuses=("requires_action",)), soonest="expires_at", limit=3)
    same(analytics.awaiting_customer(soonest, now), analytics.awaiting_customer(frame, now).head(3))
    nearest = store.intents_frame(
        where=IntentFilter(statuses=("requires_capture",)), soonest="capture_deadline", limit=3
    )
    same(analytics.awaiting_capture(nearest, now, DAY), analytics.awaiting_capture(frame, now, DAY).head(3))
    for horizon in (DAY, 3 * DAY, 6 * DAY):
        due = IntentFilter(statuses=("requires_capture",), capture_deadline_lte=now + horizon)
        assert store.count_intents(due) == int(analytics.awaiting_capture(frame, now, horizon)["due_soon"].sum())
    within = 7 * DAY
    for kind, rule in (("expired", analytics.recently_expired), ("declined", analytics.recent_declines)):
        recent = store.intents_frame(where=IntentFilter(failure_kinds=(kind,), updated_gte=now - within))
        assert len(rule(frame, now, within)) > 0, kind
        same(rule(recent, now, within), rule(frame, now, within))


def test_metadata_keys_and_values_come_from_the_stored_state(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, _ = demo
    everyone = store.metadata_of(frame["id"])
    assert everyone and set(everyone) <= set(frame["id"])
    assert store.metadata_keys() == sorted({key for pairs in everyone.values() for key in pairs})
    some = frame[frame["status"] == "canceled"]
    keys_of_some = {key for intent_id in some["id"] for key in everyone.get(intent_id, {})}
    assert store.metadata_keys(IntentFilter(statuses=("canceled",))) == sorted(keys_of_some)
    assert store.metadata_keys(IntentFilter(text="no intent has this")) == []


def test_totals_and_test_lab_filters_add_up(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, _ = demo
    totals = store.intent_totals(IntentFilter(outcomes=("Succeeded",)))
    paid = analytics.filter_intents(frame, outcomes_in=["Succeeded"])
    assert (totals.count, totals.gross, totals.received) == (
        len(paid),
        int(paid["amount"].sum()),
        int(paid["amount_received"].sum()),
    )
    assert totals.count > 0
    tagged, untagged = (
        store.count_intents(IntentFilter(only_test=True)),
        store.count_intents(IntentFilter(include_test=False)),
    )
    assert (tagged, tagged + untagged) == (int(frame["test_lab"].sum()), len(frame))


def test_the_csv_export_streams_every_row_under_one_header(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, _ = demo
    where = IntentFilter(statuses=("succeeded", "canceled"))
    data = intents_csv(store, where, "Europe/Paris", batch=7)  # many batches: one header all the same
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    expected = analytics.filter_intents(frame, statuses=["succeeded", "canceled"])
    assert [r["id"] for r in rows] == list(expected.sort_values(["created", "id"], ascending=False)["id"])
    assert data.count(b"id,status,outcome") == 1
    keys = store.metadata_keys(where)
    assert keys and [c for c in rows[0] if c.startswith("metadata.")] == [f"metadata.{k}" for k in keys]
    money = store.money_of([r["id"] for r in rows])
    for row in rows:
        moved = money.get(row["id"])
        assert row["fee_cents"] == ("" if moved is None else str(moved.fee)), row["id"]
        assert row["refunded_cents"] == ("" if moved is None else str(moved.refunded)), row["id"]
    assert any(r["fee_cents"] for r in rows) and any(r["customer_email"] for r in rows)
    metadata = store.metadata_of([rows[0]["id"]])[rows[0]["id"]]
    assert all(rows[0][f"metadata.{key}"] == value for key, value in metadata.items())
