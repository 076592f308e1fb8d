"""The audit trail's pure parts: one log line per entry, without secrets and without room for forged fields."""

from __future__ import annotations

import csv
import io

from dashboard.audit import CAPTURE, OK, REFUSED, AuditEntry, csv_export, log_line


def test_log_line_names_every_field_but_the_detail() -> None:
    entry = AuditEntry(
        at=1_790_000_000,
        who="olga@partner.org",
        role="operator",
        action=CAPTURE,
        outcome=OK,
        intent_id="pi_123",
        amount=12_345,
        idempotency_key="alma-ops-capture-abc",
        detail="Stripe's message stays in the row",
    )
    assert log_line(entry) == (
        "audit who=olga@partner.org role=operator action=capture intent=pi_123 amount=12345"
        " key=alma-ops-capture-abc outcome=ok"
    )


def test_log_line_marks_what_is_missing() -> None:
    entry = AuditEntry(at=0, who="anonymous", role="viewer", action=CAPTURE, outcome=REFUSED)
    assert log_line(entry).endswith("intent=- amount=- key=- outcome=refused")


def test_a_crafted_name_cannot_forge_a_field_or_a_line() -> None:
    entry = AuditEntry(at=0, who="eve outcome=ok\naudit who=lea", role="none", action=CAPTURE, outcome=REFUSED)
    line = log_line(entry)
    assert "\n" not in line
    assert line.startswith('audit who="eve outcome=ok\\naudit who=lea" role=none')
    assert line.endswith("outcome=refused")


def test_failed_means_neither_ok_nor_refused() -> None:
    def entry(outcome: str) -> AuditEntry:
        return AuditEntry(at=0, who="a", role="admin", action=CAPTURE, outcome=outcome)

    assert entry("payment_intent_unexpected_state").failed and entry("no_answer").failed
    assert not entry(OK).failed and not entry(REFUSED).failed


def test_csv_export_has_utc_times_both_amounts_and_defused_text() -> None:
    entries = [
        AuditEntry(1_790_000_000, "olga@partner.org", "operator", CAPTURE, OK, "pi_1", 12_345, "alma-ops-capture-k"),
        AuditEntry(1_790_000_060, "=HYPERLINK(1)", "none", CAPTURE, REFUSED, detail="a;-1"),
    ]
    rows = list(csv.DictReader(io.StringIO(csv_export(entries).decode("utf-8"))))

    assert list(rows[0]) == [
        "at_utc",
        "who",
        "role",
        "action",
        "intent_id",
        "amount_eur",
        "amount_cents",
        "outcome",
        "detail",
        "idempotency_key",
    ]
    assert rows[0]["at_utc"] == "2026-09-21T14:13:20Z"
    assert (rows[0]["amount_eur"], rows[0]["amount_cents"]) == ("123.45", "12345")
    assert rows[0]["idempotency_key"] == "alma-ops-capture-k"
    assert (rows[1]["who"], rows[1]["detail"]) == ("'=HYPERLINK(1)", "a;'-1")
    assert (rows[1]["amount_eur"], rows[1]["amount_cents"], rows[1]["intent_id"]) == ("", "", "")
