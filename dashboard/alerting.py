"""The alert rules at work: evaluated by the store's writer after each sync (AlmaSync calls `evaluate` under the
writer lock), state kept in the store, notifications sent through apprise.

Exactly once, across restarts and processes: a rule's row in the store changes only from the revision its
changer read, and a notification is recorded as `sending` in that same change, before anything goes out.
Whoever moved the row sends; the others find it moved and stay quiet. After sending, the outcome is recorded;
a failed delivery stays owed and is sent again at the next evaluation (only to the targets that refused it).
A process that dies between the two leaves its notification `sending`: once its lease has run out it is
marked interrupted and not sent again (a possible miss, shown on the Alerts page, rather than a repeat).

"Data stale" is the one rule a dashboard may raise too (`check_data_stale`): when nobody syncs, no writer is
left to say so. Its evaluation goes through the same revision check, so one process sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.alert_figures import alert_figures, last_success_at
from dashboard.alerts import (
    RULES,
    AlertFigures,
    FailureFigures,
    Notification,
    Rule,
    RuleResult,
    RuleState,
    check_notification,
    evaluate,
    record_delivery,
    step,
)
from dashboard.settings import URLS_ENV, AlertSettings
from dashboard.store import IntentStore
from dashboard.store.alert_log import AlertLog, DeliveryOutcome, NotificationRecord, StoredRuleState

if TYPE_CHECKING:  # apprise loads ~180 plugins: imported (by wiring) only when alert URLs are configured
    from dashboard.notify import Notifier

log = logging.getLogger(__name__)

# How long a claimed delivery may take before another evaluation takes it as interrupted: apprise waits a few
# seconds per target, and there are a few targets.
DELIVERY_LEASE_SECONDS = 300
NOT_CONFIGURED = f"not sent: no {URLS_ENV} configured"
# What a failed sync or a dashboard can judge: whether the data is fresh, not what it says.
DATA_STALE_ONLY: tuple[Rule, ...] = ("data_stale",)


@dataclass(frozen=True)
class Sent:
    """One notification this evaluation decided, and how its delivery went."""

    rule: Rule | None
    kind: str
    outcome: DeliveryOutcome
    detail: str


class AlertService:
    def __init__(
        self, store: IntentStore, log: AlertLog, settings: AlertSettings, tz: str, notifier: Notifier | None
    ) -> None:
        self._store = store
        self._log = log
        self._settings = settings
        self._tz = tz
        self._notifier = notifier if notifier is not None and notifier.configured else None

    @property
    def settings(self) -> AlertSettings:
        return self._settings

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """(target id, masked URL) of each configured target."""
        return self._notifier.targets if self._notifier is not None else ()

    @property
    def log(self) -> AlertLog:
        """Each rule's stored state and the notifications' history (the Alerts page reads them)."""
        return self._log

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.close()

    # -- evaluation ---------------------------------------------------------------------------------------

    def evaluate(self, now: int, rules: Collection[Rule] = RULES) -> list[Sent]:
        """Every rule in `rules` at `now` (the sync's clock): state moved, notifications sent. Never raises: an
        alert problem is logged and must not fail the sync that called it."""
        try:
            return self._evaluate(now, rules)
        except Exception:
            log.exception("alert evaluation failed; the next one tries again")
            return []

    def check_data_stale(self, now: int) -> list[Sent]:
        """A dashboard's look at the store's last successful sync (see the module's note)."""
        return self.evaluate(now, DATA_STALE_ONLY)

    def _figures(self, now: int, rules: Collection[Rule]) -> AlertFigures:
        if set(rules) == {"data_stale"}:  # a dashboard's check: one row to read, not the rules' queries
            return AlertFigures(FailureFigures(0, 0, 0), (), (), last_success_at(self._store))
        return alert_figures(self._store, self._log, now, self._settings)

    def _evaluate(self, now: int, rules: Collection[Rule]) -> list[Sent]:
        figures = self._figures(now, rules)
        stored = self._log.states()
        sent: list[Sent] = []
        for result in evaluate(figures, now, self._settings, self._tz):
            if result.rule not in rules:
                continue
            if result.rule == "data_stale" and figures.last_sync_success_at is None:
                continue  # the first sync is still running: pages show its progress; stale counts from a success
            seen = stored.get(result.rule) or StoredRuleState(result.rule, RuleState())
            outcome = self._evaluate_rule(seen, result, now)
            if outcome is not None:
                sent.append(outcome)
        return sent

    def _evaluate_rule(self, seen: StoredRuleState, result: RuleResult, now: int) -> Sent | None:
        previous, interrupted = seen.state, None
        if seen.notification_id is not None and previous.pending is not None:
            record = self._log.notification(seen.notification_id)
            if record is not None and record.outcome == "sending":
                if not record.interrupted_at(self._log.wall_now()):
                    return None  # another process is delivering it right now
                interrupted = record.id
                previous = record_delivery(previous, previous.pending, True, now)  # at most once: not again
        state, note = step(previous, result, now, self._settings.cooldown_seconds, self._tz)
        if note is None and interrupted is None and state == seen.state and result.value == seen.value:
            return None  # nothing changed: no write
        held = self._log.claim(
            seen,
            state,
            result.value,
            now,
            note,
            lease_seconds=DELIVERY_LEASE_SECONDS,
            interrupted=interrupted,
        )
        if held is None or note is None:
            return None  # another process moved the row first, or there is nothing to send
        outcome, detail, failed = self._deliver(note, held.failed_targets)
        # With nowhere to send, the notification is recorded (the Alerts page lists it) and not owed.
        after = record_delivery(state, note.kind, outcome != "failed", now)
        self._log.finish(held, after, outcome, detail, failed)
        log.info("alert %s %s: %s (%s)", note.rule, note.kind, outcome, detail)  # detail names targets masked
        return Sent(note.rule, note.kind, outcome, detail)

    def _deliver(
        self, note: Notification, failed_before: tuple[str, ...]
    ) -> tuple[DeliveryOutcome, str, tuple[str, ...]]:
        """(outcome, detail, target ids that refused it); only the targets that refused it last time, if any."""
        if self._notifier is None:
            return "not_sent", NOT_CONFIGURED, ()
        delivery = self._notifier.send(note, only=failed_before or None)
        return ("delivered" if delivery.delivered else "failed"), delivery.detail, delivery.failed_targets

    # -- the Alerts page ----------------------------------------------------------------------------------

    def current(self, now: int) -> tuple[RuleResult, ...]:
        """Every rule's result right now, for the Alerts page (nothing is written or sent)."""
        return evaluate(alert_figures(self._store, self._log, now, self._settings), now, self._settings, self._tz)

    def send_test(self, now: int, key: str) -> NotificationRecord:
        """A test notification to every target, once per submission `key` (a double click sends once).
        Returns its history row, with the delivery's outcome."""
        note = check_notification(now, self._tz)
        notification_id = self._log.add_test(note, now, key, lease_seconds=DELIVERY_LEASE_SECONDS)
        if notification_id is not None:
            self._log.finish_test(notification_id, *self._deliver(note, ()))
        record = self._log.test_notification(key)
        assert record is not None  # made above, or by this submission before
        return record
