"""The store's alert tables (schema.alert_state, alert_notifications): each rule's state, changed only from the
revision its changer read (so of two processes evaluating at once exactly one moves a row and sends), and the
notifications' history; plus the failed refunds the refund rule reads.

AlertLog shares the IntentStore's engine (whose opening created or migrated the schema) but not its writer-lock
machinery: the dashboards write here too (a test notification, data stale), and none of it is the sync's work."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from dashboard.alerts import FailedRefund, Notification, RuleState
from dashboard.clock import Clock, SystemClock
from dashboard.store import dialects
from dashboard.store.schema import alert_notifications, alert_state, balance_transactions, refunds

DeliveryOutcome = Literal["sending", "delivered", "failed", "interrupted", "not_sent"]


@dataclass(frozen=True)
class StoredRuleState:
    rule: str
    state: RuleState
    revision: int = 0  # 0: no row yet
    notification_id: int | None = None  # the history row of the notification the state owes (state.pending)
    failed_targets: tuple[str, ...] = ()  # where that notification's last attempt failed (empty: everywhere)
    value: str | None = None  # the rule's figure at the last evaluation
    evaluated_at: int | None = None


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    rule: str | None  # None: a test notification
    kind: str
    title: str
    body: str
    created_at: int
    attempts: int
    last_attempt_at: int  # wall time
    outcome: DeliveryOutcome
    sending_until: int | None
    detail: str
    failed_targets: tuple[str, ...]

    def interrupted_at(self, wall_now: int) -> bool:
        """A claimed delivery whose process never said how it went (it died or hung past its lease)."""
        return self.outcome == "sending" and (self.sending_until or 0) < wall_now


class StateMoved(Exception):
    """Another process changed the rule's row since it was read."""


def _targets(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _rule_state(row: Mapping[Any, Any]) -> StoredRuleState:
    state = RuleState(row["status"], row["since"], row["last_sent_at"], row["pending"])
    return StoredRuleState(
        row["rule"],
        state,
        int(row["revision"]),
        row["notification_id"],
        _targets(row["failed_targets"]),
        row["value"],
        row["evaluated_at"],
    )


def _record(row: Mapping[Any, Any]) -> NotificationRecord:
    values = {name: row[name] for name in NotificationRecord.__dataclass_fields__}
    values["failed_targets"] = _targets(row["failed_targets"])
    return NotificationRecord(**values)


def _rule_states(conn: sa.Connection) -> dict[str, StoredRuleState]:
    return {row["rule"]: _rule_state(row) for row in conn.execute(sa.select(alert_state)).mappings()}


def _notification(conn: sa.Connection, notification_id: int) -> NotificationRecord | None:
    row = conn.execute(sa.select(alert_notifications).where(alert_notifications.c.id == notification_id)).mappings()
    found = row.first()
    return _record(found) if found is not None else None


def _history(conn: sa.Connection, limit: int) -> list[NotificationRecord]:
    query = sa.select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
    return [_record(row) for row in conn.execute(query).mappings()]


def _state_values(state: RuleState) -> dict[str, Any]:
    return {"status": state.status, "since": state.since, "last_sent_at": state.last_sent_at, "pending": state.pending}


def _move_state(conn: sa.Connection, seen: StoredRuleState, values: dict[str, Any]) -> bool:
    """Write the rule's row from the revision `seen` read; False when another process moved it first."""
    values = {**values, "revision": seen.revision + 1}
    if seen.revision == 0:
        # RETURNING, not rowcount: PostgreSQL's driver counts a row an ON CONFLICT DO NOTHING left out.
        inserted = dialects.upsert(conn, alert_state).values(rule=seen.rule, **values)
        statement = inserted.on_conflict_do_nothing(index_elements=["rule"]).returning(alert_state.c.rule)
        return conn.execute(statement).first() is not None
    moved = conn.execute(
        alert_state.update()
        .where(alert_state.c.rule == seen.rule, alert_state.c.revision == seen.revision)
        .values(values)
    )
    return bool(moved.rowcount)


def _claim(
    conn: sa.Connection,
    seen: StoredRuleState,
    state: RuleState,
    value: str,
    evaluated_at: int,
    note: Notification | None,
    wall_now: int,
    sending_until: int,
    interrupted: int | None = None,
) -> StoredRuleState:
    """The rule's new state, and (with `note`) its notification marked `sending` before anything goes out: a
    retry of the same notification reuses its row, a new one gets a row. StateMoved when another process moved
    the row first (it evaluated, it sends). The returned state is what the caller now holds."""
    if interrupted is not None:
        _mark_interrupted(conn, interrupted, wall_now)
    notification_id = None
    targets = seen.failed_targets
    if note is not None:
        retry = seen.notification_id is not None and seen.state.pending == note.kind
        text = {"title": note.title, "body": note.body, "outcome": "sending", "sending_until": sending_until}
        attempt = {**text, "last_attempt_at": wall_now}
        if retry:
            notification_id = seen.notification_id
            conn.execute(
                alert_notifications.update()
                .where(alert_notifications.c.id == notification_id)
                .values(**attempt, attempts=alert_notifications.c.attempts + 1)
            )
        else:
            targets = ()
            row = {"rule": note.rule, "kind": note.kind, "created_at": evaluated_at, "attempts": 1, "detail": ""}
            statement = alert_notifications.insert().values(**row, **attempt).returning(alert_notifications.c.id)
            notification_id = int(conn.execute(statement).scalar_one())
    elif state.pending is None:
        targets = ()
    values = {
        **_state_values(state),
        "notification_id": notification_id if note is not None else (seen.notification_id if state.pending else None),
        "failed_targets": json.dumps(list(targets)) if targets else None,
        "value": value,
        "evaluated_at": evaluated_at,
    }
    if not _move_state(conn, seen, values):
        raise StateMoved(seen.rule)  # rolls the notification row back too: the other process owns it
    return StoredRuleState(seen.rule, state, seen.revision + 1, values["notification_id"], targets, value, evaluated_at)


def _finish(
    conn: sa.Connection,
    held: StoredRuleState,
    after: RuleState,
    outcome: DeliveryOutcome,
    detail: str,
    failed_targets: Sequence[str],
    wall_now: int,
) -> None:
    """How the claimed notification's delivery went, and the rule's state after it (still owing it when it
    failed). The state row is written only if nobody moved it since the claim."""
    assert held.notification_id is not None  # a claim made the row
    _record_outcome(conn, held.notification_id, outcome, detail, failed_targets, wall_now)
    values = {
        **_state_values(after),
        "notification_id": held.notification_id if after.pending else None,
        "failed_targets": json.dumps(list(failed_targets)) if after.pending and failed_targets else None,
    }
    _move_state(conn, held, values)


def _mark_interrupted(conn: sa.Connection, notification_id: int, wall_now: int) -> None:
    conn.execute(
        alert_notifications.update()
        .where(alert_notifications.c.id == notification_id, alert_notifications.c.outcome == "sending")
        .values(
            outcome="interrupted",
            sending_until=None,
            detail="the process sending it stopped before it could say how it went; not sent again",
            last_attempt_at=wall_now,
        )
    )


def _add_test(
    conn: sa.Connection, note: Notification, created_at: int, wall_now: int, sending_until: int, key: str
) -> int | None:
    """A test notification's row, claimed for sending; None when this submission already made one."""
    row = {
        "rule": None,
        "kind": note.kind,
        "title": note.title,
        "body": note.body,
        "created_at": created_at,
        "attempts": 1,
        "last_attempt_at": wall_now,
        "outcome": "sending",
        "sending_until": sending_until,
        "detail": "",
        "idempotency_key": key,
    }
    statement = dialects.upsert(conn, alert_notifications).values(row)
    made = conn.execute(
        statement.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(alert_notifications.c.id)
    ).scalar()
    return None if made is None else int(made)


def _record_outcome(
    conn: sa.Connection,
    notification_id: int,
    outcome: DeliveryOutcome,
    detail: str,
    failed_targets: Sequence[str],
    wall_now: int,
) -> None:
    """How a notification's delivery went (a rule's or a test's)."""
    conn.execute(
        alert_notifications.update()
        .where(alert_notifications.c.id == notification_id)
        .values(
            outcome=outcome,
            detail=detail,
            failed_targets=json.dumps(list(failed_targets)) if failed_targets else None,
            sending_until=None,
            last_attempt_at=wall_now,
        )
    )


def _by_key(conn: sa.Connection, key: str) -> NotificationRecord | None:
    row = conn.execute(sa.select(alert_notifications).where(alert_notifications.c.idempotency_key == key))
    found = row.mappings().first()
    return _record(found) if found is not None else None


class AlertLog:
    """Delivery leases are on `clock` (wall time by default): they are about processes, not about Stripe."""

    def __init__(self, engine: sa.Engine, clock: Clock | None = None) -> None:
        self._engine = engine  # the IntentStore's: one pool of connections per process
        self._clock: Clock = clock or SystemClock()

    def wall_now(self) -> int:
        return self._clock.now()

    def states(self) -> dict[str, StoredRuleState]:
        with self._engine.connect() as conn:
            return _rule_states(conn)

    def notification(self, notification_id: int) -> NotificationRecord | None:
        with self._engine.connect() as conn:
            return _notification(conn, notification_id)

    def history(self, limit: int) -> list[NotificationRecord]:
        """The newest notifications first."""
        with self._engine.connect() as conn:
            return _history(conn, limit)

    def claim(
        self,
        seen: StoredRuleState,
        state: RuleState,
        value: str,
        evaluated_at: int,
        note: Notification | None,
        *,
        lease_seconds: int,
        interrupted: int | None = None,
    ) -> StoredRuleState | None:
        """Move the rule from `seen` to `state`; with `note`, its notification is recorded as sending (the
        commit point: whoever moved the row sends it). None when another process moved the row first.
        `interrupted`: a notification whose sender died mid-way, marked so in the same transaction."""
        wall_now = self._clock.now()
        try:
            with dialects.write_transaction(self._engine) as conn:
                return _claim(
                    conn, seen, state, value, evaluated_at, note, wall_now, wall_now + lease_seconds, interrupted
                )
        except StateMoved:
            return None

    def finish(
        self,
        held: StoredRuleState,
        after: RuleState,
        outcome: DeliveryOutcome,
        detail: str,
        failed_targets: Sequence[str] = (),
    ) -> None:
        with dialects.write_transaction(self._engine) as conn:
            _finish(conn, held, after, outcome, detail, failed_targets, self._clock.now())

    def add_test(self, note: Notification, created_at: int, key: str, *, lease_seconds: int) -> int | None:
        """The test notification of one submission, claimed for sending; None when that submission already
        made one (a double click sends once)."""
        wall_now = self._clock.now()
        with dialects.write_transaction(self._engine) as conn:
            return _add_test(conn, note, created_at, wall_now, wall_now + lease_seconds, key)

    def finish_test(
        self, notification_id: int, outcome: DeliveryOutcome, detail: str, failed_targets: Sequence[str] = ()
    ) -> None:
        with dialects.write_transaction(self._engine) as conn:
            _record_outcome(conn, notification_id, outcome, detail, failed_targets, self._clock.now())

    def test_notification(self, key: str) -> NotificationRecord | None:
        with self._engine.connect() as conn:
            return _by_key(conn, key)

    def failed_refunds(self, failed_after: int) -> list[FailedRefund]:
        """Refunds that turned failed after `failed_after`, oldest first. When it failed is its giveback's
        balance transaction (refund_failure); until that is synced, the refund's creation."""
        r, b = refunds.c, balance_transactions.c
        failed_at = sa.func.coalesce(sa.func.max(b.created), r.created)
        query = (
            sa.select(r.id, r.intent_id, r.amount, failed_at, r.failure_reason)
            .join_from(
                refunds, balance_transactions, sa.and_(b.source_id == r.id, b.type == "refund_failure"), isouter=True
            )
            .where(r.status == "failed")
            .group_by(r.id, r.intent_id, r.amount, r.created, r.failure_reason)
            .having(failed_at > failed_after)
            .order_by(failed_at, r.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [FailedRefund(str(i), intent, int(amount), int(at), reason) for i, intent, amount, at, reason in rows]
