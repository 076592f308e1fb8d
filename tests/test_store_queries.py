"""The store's bounded queries give exactly what analytics gives on the whole frame, on SQLite and PostgreSQL,
for a demo account synced from the sandbox (every status, failures, DST changes within the 90 days)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from dashboard import analytics
from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox
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


def filters(now: int) -> list[tuple[IntentFilter, dict[str, object]]]:
    """Store filters and the analytics.filter_intents arguments that mean the same."""
    week = analytics.Period(now - 7 * DAY, now + 1)
    return [
        (IntentFilter(), {}),
        (IntentFilter(created_gte=week.start, created_lt=week.end), {"period": week}),
        (IntentFilter(statuses=("succeeded", "requires_capture")), {"statuses": ["succeeded", "requires_capture"]}),
        (IntentFilter(min_cents=10_000, max_cents=60_000), {"min_cents": 10_000, "max_cents": 60_000}),
        (IntentFilter(text="ORDER"), {"text": "ORDER"}),
        (IntentFilter(text="%_"), {"text": "%_"}),  # LIKE's wildcards are literal here
        (IntentFilter(include_test=False), {"include_test": False}),
    ]


def test_filters_count_and_pages_match_analytics(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, now = demo
    assert len(frame) == 400
    for where, arguments in filters(now):
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
        assert store.kpis(where) == analytics.kpis(rows), days
        same(store.status_counts(where), analytics.status_counts(rows))
        same(store.time_to_authorise(where), analytics.time_to_authorise(rows))
        for tz in ("Europe/Paris", "America/New_York", "Asia/Kolkata"):
            same(store.daily_by_status(where, tz), analytics.daily_by_status(rows, tz=tz))
        failures = store.intents_frame(
            where=IntentFilter(created_gte=period.start, created_lt=period.end, failure_kinds=("expired", "declined")),
            newest="updated_at",
            limit=10,
        )
        same(analytics.recent_failures(failures), analytics.recent_failures(rows))
    assert store.kpis(IntentFilter(created_gte=now + DAY, created_lt=now + 2 * DAY)) == analytics.kpis(frame.head(0))


def test_expiry_watch_lists_match_analytics(demo: tuple[IntentStore, pd.DataFrame, int]) -> None:
    store, frame, now = demo
    waiting = store.intents_frame(where=IntentFilter(statuses=("requires_action",)))
    same(analytics.awaiting_customer(waiting, now), analytics.awaiting_customer(frame, now))
    held = store.intents_frame(where=IntentFilter(statuses=("requires_capture",)))
    same(analytics.awaiting_capture(held, now, DAY), analytics.awaiting_capture(frame, now, DAY))
    within = 7 * DAY
    for kind, rule in (("expired", analytics.recently_expired), ("declined", analytics.recent_declines)):
        recent = store.intents_frame(where=IntentFilter(failure_kinds=(kind,), updated_gte=now - within))
        assert len(rule(frame, now, within)) > 0, kind
        same(rule(recent, now, within), rule(frame, now, within))
