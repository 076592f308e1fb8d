"""The audit trail: every write attempt (create, cancel, capture, clock advance), also the refused and the
failed ones, as one row in the store and one log line.

The action layer (dashboard/actions.py) records each attempt with the outcome it ended with: `ok`, `refused`
(the person's role or the mode does not allow it; nothing was sent), Stripe's error code, or `no_answer` when
the connection was lost (Stripe may or may not have acted; a retry under the same idempotency key replays
whichever it was). Rows are only ever added: the sync never touches them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from dashboard.analytics import defuse_formulas
from dashboard.clock import Clock, SystemClock
from dashboard.money import cents_to_decimal_text

log = logging.getLogger(__name__)
# When an attempt happened: the machine's UTC time in every mode. Local mode's sandbox clock runs ahead by every
# advance and may not answer at all, and an audit trail tells when people acted.
CLOCK: Clock = SystemClock()

CREATE_INTENT = "create_intent"
CANCEL = "cancel"
CAPTURE = "capture"
ADVANCE_CLOCK = "advance_clock"
REFUND = "refund"
TEST_NOTIFICATION = "test_notification"  # from the Alerts page: not a Stripe write, audited all the same
ACTIONS = (CREATE_INTENT, CANCEL, CAPTURE, REFUND, ADVANCE_CLOCK, TEST_NOTIFICATION)

OK = "ok"
REFUSED = "refused"
NO_ANSWER = "no_answer"  # the connection was lost: Stripe may or may not have acted
FAILED = "failed"  # a filter choice: any Stripe error code
OUTCOME_CHOICES = (OK, FAILED, REFUSED)
NO_ROLE = "none"
_PLAIN = re.compile(r"[\w.@+:-]+")


@dataclass(frozen=True)
class AuditEntry:
    at: int  # unix seconds, UTC
    who: str  # verified email, else the provider's subject, else "anonymous"
    role: str  # the role at the time, or "none"
    action: str  # one of ACTIONS
    outcome: str  # OK, REFUSED, NO_ANSWER or Stripe's error code
    intent_id: str | None = None
    amount: int | None = None  # cents: what the action was about (created, captured, released)
    idempotency_key: str | None = None
    detail: str = ""  # Stripe's message on failure; the seconds of a clock advance

    @property
    def failed(self) -> bool:
        return self.outcome not in (OK, REFUSED)


@dataclass(frozen=True)
class AuditFilter:
    since: int | None = None  # unix seconds, inclusive
    until: int | None = None  # exclusive
    who: str | None = None  # exact
    actions: tuple[str, ...] = ()  # empty: any
    outcomes: tuple[str, ...] = ()  # OUTCOME_CHOICES; empty: any


class AuditLog(Protocol):
    """Where entries are kept (the store)."""

    def add_audit_entry(self, entry: AuditEntry) -> None: ...


def log_line(entry: AuditEntry) -> str:
    """One line, key=value, without secrets: the idempotency key is a hash of the submission and Stripe's
    message stays out (it is in the row). A value that is not one plain word is quoted, so a crafted subject
    cannot forge another field or a second line."""
    fields = {
        "who": entry.who,
        "role": entry.role,
        "action": entry.action,
        "intent": entry.intent_id or "-",
        "amount": "-" if entry.amount is None else str(entry.amount),
        "key": entry.idempotency_key or "-",
        "outcome": entry.outcome,
    }
    return "audit " + " ".join(
        f"{name}={value if _PLAIN.fullmatch(value) else json.dumps(value)}" for name, value in fields.items()
    )


def entries_frame(entries: Sequence[AuditEntry]) -> pd.DataFrame:
    """One row per entry, in the given order; `at` as a UTC timestamp, amounts as nullable int cents."""
    return pd.DataFrame(
        {
            "at": pd.to_datetime([e.at for e in entries], unit="s", utc=True),
            "who": pd.array([e.who for e in entries], dtype="string"),
            "role": pd.array([e.role for e in entries], dtype="string"),
            "action": pd.array([e.action for e in entries], dtype="string"),
            "intent_id": pd.array([e.intent_id for e in entries], dtype="string"),
            "amount_cents": pd.array([e.amount for e in entries], dtype="Int64"),
            "outcome": pd.array([e.outcome for e in entries], dtype="string"),
            "detail": pd.array([e.detail for e in entries], dtype="string"),
            "idempotency_key": pd.array([e.idempotency_key for e in entries], dtype="string"),
        }
    )


_CSV_TEXT = ("who", "role", "action", "intent_id", "outcome", "detail", "idempotency_key")


def csv_export(entries: Sequence[AuditEntry]) -> bytes:
    """UTF-8 CSV, CRLF lines, as the intents export: `at_utc` in ISO 8601, the amount in EUR ("1234.56") and in
    cents, and every text cell defused against spreadsheet formulas (a subject is whatever a provider sent)."""
    frame = entries_frame(entries)
    export = pd.DataFrame(
        {
            "at_utc": frame["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **{column: frame[column] for column in _CSV_TEXT[:4]},
            "amount_eur": frame["amount_cents"].map(lambda c: None if pd.isna(c) else cents_to_decimal_text(int(c))),
            "amount_cents": frame["amount_cents"],
            **{column: frame[column] for column in _CSV_TEXT[4:]},
        }
    )
    export[list(_CSV_TEXT)] = export[list(_CSV_TEXT)].apply(defuse_formulas)
    text: str = export.to_csv(index=False, lineterminator="\r\n")
    return text.encode("utf-8")
