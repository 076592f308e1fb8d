"""Queries bounded by what a page draws: a filter's count and one keyset page of it, aggregates for a period,
the few rows of a short list. The SQL twin of analytics.filter_intents is `IntentFilter.clause`; aggregates
give exactly what the analytics functions give on the same rows (tests hold both to it, on both databases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.analytics import SEARCHED_COLUMNS, search_amount
from dashboard.domain import OUTCOME_OF_FAILURE, OUTCOME_OF_STATUS
from dashboard.store.schema import intents

SortColumn = Literal["created", "amount"]
SORT_COLUMNS: tuple[SortColumn, ...] = ("created", "amount")


@dataclass(frozen=True)
class IntentFilter:
    """Every given criterion must hold; empty means "any" (as analytics.filter_intents). `outcomes` are
    domain.outcome labels ("Expired", "Awaiting capture"…). Amount bounds are inclusive, on `amount`; the
    period is created_gte <= created < created_lt. Text is a case-insensitive literal substring of
    analytics.SEARCHED_COLUMNS, or an amount ("120.50") as analytics reads one."""

    statuses: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    created_gte: int | None = None
    created_lt: int | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    text: str = ""
    failure_kinds: tuple[str, ...] = ()  # "expired" / "declined"
    updated_gte: int | None = None
    capture_deadline_lte: int | None = None
    include_test: bool = True  # False leaves Test lab's intents out (the `test_lab` column)
    only_test: bool = False  # True keeps Test lab's intents only

    def clause(self) -> sa.ColumnElement[bool]:
        i = intents.c
        parts: list[sa.ColumnElement[bool]] = []
        if self.statuses:
            parts.append(i.status.in_(self.statuses))
        if self.outcomes:
            parts.append(sa.or_(*(outcome_clause(label) for label in self.outcomes)))
        if self.created_gte is not None:
            parts.append(i.created >= self.created_gte)
        if self.created_lt is not None:
            parts.append(i.created < self.created_lt)
        if self.min_cents is not None:
            parts.append(i.amount >= self.min_cents)
        if self.max_cents is not None:
            parts.append(i.amount <= self.max_cents)
        if self.failure_kinds:
            parts.append(i.failure_kind.in_(self.failure_kinds))
        if self.updated_gte is not None:
            parts.append(i.updated_at >= self.updated_gte)
        if self.capture_deadline_lte is not None:
            parts.append(i.capture_deadline <= self.capture_deadline_lte)
        if not self.include_test:
            parts.append(i.test_lab.is_not(True))
        if self.only_test:
            parts.append(i.test_lab.is_(True))
        if needle := self.text.strip():
            found = [sa.func.lower(i[name]).contains(needle.lower(), autoescape=True) for name in SEARCHED_COLUMNS]
            if (cents := search_amount(needle)) is not None:
                found.append(i.amount == cents)
            parts.append(sa.or_(*found))
        return sa.and_(sa.true(), *parts)


def outcome_clause(label: str) -> sa.ColumnElement[bool]:
    """The rows domain.outcome names `label`: the SQL reading of the one rule (an unknown label matches none)."""
    i = intents.c
    failed = {text: kind for kind, text in OUTCOME_OF_FAILURE.items()}
    if label in failed:
        return sa.and_(i.status == "requires_payment_method", i.failure_kind == failed[label])
    statuses = [status for status, text in OUTCOME_OF_STATUS.items() if text == label]
    if label == "Other":
        return i.status.not_in(list(OUTCOME_OF_STATUS))
    if "requires_payment_method" in statuses:  # "Not started": no failure that renames it
        return sa.and_(
            i.status == "requires_payment_method",
            sa.or_(i.failure_kind.is_(None), i.failure_kind.not_in(list(OUTCOME_OF_FAILURE))),
        )
    return i.status.in_(statuses)


@dataclass(frozen=True)
class PageKey:
    """Where the next keyset page starts: the last row's sort value and id."""

    value: int
    id: str


def keyset_query(
    columns: Sequence[sa.ColumnElement[Any]],
    where: IntentFilter,
    *,
    sort: SortColumn,
    descending: bool,
    after: PageKey | None,
    limit: int,
) -> sa.Select[Any]:
    """One page in (sort, id) order, both the same direction, starting after `after`: an index walk, however
    deep the page."""
    if sort not in SORT_COLUMNS:
        raise ValueError(f"sort must be one of {', '.join(SORT_COLUMNS)}")
    key = sa.tuple_(intents.c[sort], intents.c.id)
    query = sa.select(*columns).where(where.clause())
    if after is not None:
        bound = sa.tuple_(sa.literal(after.value), sa.literal(after.id))
        query = query.where(key < bound if descending else key > bound)
    order = (intents.c[sort].desc(), intents.c.id.desc()) if descending else (intents.c[sort], intents.c.id)
    return query.order_by(*order).limit(limit)


def constant_offset_spans(start: int, end: int, tz: str) -> list[tuple[int, int, int]]:
    """[start, end) cut where the zone's UTC offset changes: (span_start, span_end, offset_seconds). Within a
    span, a local day is floor((t + offset) / 86400); a year has about two cuts (daylight saving)."""
    zone = ZoneInfo(tz)

    def offset(at: int) -> int:
        delta = datetime.fromtimestamp(at, zone).utcoffset() or timedelta(0)
        return int(delta.total_seconds())

    spans: list[tuple[int, int, int]] = []
    span_start, current = start, offset(start)
    probe = start
    while probe < end:
        step = min(probe + 3600, end)
        if step < end and offset(step) != current:
            low, high = probe, step  # the change is in (low, high]: find its first second
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            spans.append((span_start, high, current))
            span_start, current = high, offset(high)
        probe = step
    spans.append((span_start, end, current))
    return spans
