"""The alert tables' statements: each rule's state (changed only from the revision its changer read, so of two
processes evaluating at once exactly one moves a row and sends), and the notifications' history."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from dashboard.alerts import Notification, RuleState
from dashboard.store import dialects
from dashboard.store.schema import alert_notifications, alert_state

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


def rule_states(conn: sa.Connection) -> dict[str, StoredRuleState]:
    return {row["rule"]: _rule_state(row) for row in conn.execute(sa.select(alert_state)).mappings()}


def notification(conn: sa.Connection, notification_id: int) -> NotificationRecord | None:
    row = conn.execute(sa.select(alert_notifications).where(alert_notifications.c.id == notification_id)).mappings()
    found = row.first()
    return _record(found) if found is not None else None


def history(conn: sa.Connection, limit: int) -> list[NotificationRecord]:
    query = sa.select(alert_notifications).order_by(alert_notifications.c.id.desc()).limit(limit)
    return [_record(row) for row in conn.execute(query).mappings()]


def _state_values(state: RuleState) -> dict[str, Any]:
    return {"status": state.status, "since": state.since, "last_sent_at": state.last_sent_at, "pending": state.pending}


def move_state(conn: sa.Connection, seen: StoredRuleState, values: dict[str, Any]) -> bool:
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


def claim(
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
        mark_interrupted(conn, interrupted, wall_now)
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
    if not move_state(conn, seen, values):
        raise StateMoved(seen.rule)  # rolls the notification row back too: the other process owns it
    return StoredRuleState(seen.rule, state, seen.revision + 1, values["notification_id"], targets, value, evaluated_at)


def finish(
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
    conn.execute(
        alert_notifications.update()
        .where(alert_notifications.c.id == held.notification_id)
        .values(
            outcome=outcome,
            detail=detail,
            failed_targets=json.dumps(list(failed_targets)) if failed_targets else None,
            sending_until=None,
            last_attempt_at=wall_now,
        )
    )
    values = {
        **_state_values(after),
        "notification_id": held.notification_id if after.pending else None,
        "failed_targets": json.dumps(list(failed_targets)) if after.pending and failed_targets else None,
    }
    move_state(conn, held, values)


def mark_interrupted(conn: sa.Connection, notification_id: int, wall_now: int) -> None:
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


def add_test(
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


def finish_test(
    conn: sa.Connection,
    notification_id: int,
    outcome: DeliveryOutcome,
    detail: str,
    failed_targets: Sequence[str],
    wall_now: int,
) -> None:
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


def by_key(conn: sa.Connection, key: str) -> NotificationRecord | None:
    row = conn.execute(sa.select(alert_notifications).where(alert_notifications.c.idempotency_key == key))
    found = row.mappings().first()
    return _record(found) if found is not None else None
