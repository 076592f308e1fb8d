"""The audit table's queries: what the Audit page's filters mean in SQL, and rows back into entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from dashboard import audit as trail
from dashboard.audit import AuditEntry, AuditFilter
from dashboard.store.schema import audit

_FIELDS = ("at", "who", "role", "action", "outcome", "intent_id", "amount", "idempotency_key", "detail")
COLUMNS = tuple(audit.c[name] for name in _FIELDS)


def values(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _FIELDS}


def entry(row: Mapping[Any, Any]) -> AuditEntry:
    return AuditEntry(**{name: row[name] for name in _FIELDS})


def conditions(wanted: AuditFilter) -> list[sa.ColumnElement[bool]]:
    """The filter as WHERE conditions; outcomes are OR'ed, `failed` being anything but ok and refused."""
    c = audit.c
    found: list[sa.ColumnElement[bool]] = []
    if wanted.since is not None:
        found.append(c.at >= wanted.since)
    if wanted.until is not None:
        found.append(c.at < wanted.until)
    if wanted.who is not None:
        found.append(c.who == wanted.who)
    if wanted.actions:
        found.append(c.action.in_(wanted.actions))
    if wanted.outcomes:
        plain = [o for o in wanted.outcomes if o != trail.FAILED]
        either = [c.outcome.in_(plain)] if plain else []
        if trail.FAILED in wanted.outcomes:
            either.append(c.outcome.not_in((trail.OK, trail.REFUSED)))
        found.append(sa.or_(*either))
    return found
