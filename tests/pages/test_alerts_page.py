"""The Alerts page: the rules with their threshold, figure and state; the notifications the embedded sync sent
(to a local JSON receiver) with their delivery; the admin's test notification, audited, sent once per click."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.audit import AuditFilter
from dashboard.gateway import StripeGateway
from dashboard.store import IntentStore
from tests.conftest import SandboxServer
from tests.json_receiver import JsonReceiver
from tests.pages.conftest import create_intent, open_app, press_hosted_button

PAGE = "app_pages/alerts.py"
TEST_BUTTON = "Send a test notification"


def rules(at: AppTest) -> dict[str, tuple[str, str, str]]:
    table = at.dataframe[0].value
    return {row.rule: (row.fires_on, row.now, row.state) for row in table.itertuples()}


def history(at: AppTest) -> list[tuple[str, str, str]]:
    if len(at.dataframe) < 2:
        return []
    return [(row.rule, row.kind, row.outcome) for row in at.dataframe[1].value.itertuples()]


def test_every_rule_with_its_threshold_figure_and_state(app_env: SandboxServer) -> None:
    at = open_app(PAGE)
    shown = rules(at)
    assert list(shown) == ["Failure spike", "Captures due", "Refund failed", "Data stale"]
    assert shown["Failure spike"] == (
        "at least 5 intents sent to Alma in 60 min, at least 50% of them declined or expired",
        "0 of 0 failed (0%) in the last 60 min",
        "ok",
    )
    assert shown["Captures due"][1] == "0 captures due within 24 h (€0.00)"
    assert [i.value for i in at.info if "ALMA_OPS_ALERT_URLS" in i.value] == [
        "No ALMA_OPS_ALERT_URLS configured: notifications are listed below but sent nowhere."
    ]
    assert "No notification yet." in [c.value for c in at.caption]


def test_a_failure_spike_the_sync_sent_is_listed_with_its_delivery(
    app_env: SandboxServer,
    gateway: StripeGateway,
    json_receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALMA_OPS_ALERT_URLS", json_receiver.url())
    for amount in range(6_000, 6_005):
        press_hosted_button(create_intent(gateway, amount).redirect_url or "", "Fail test payment")

    at = open_app(PAGE)

    assert [got.title for got in json_receiver.received] == [
        "Alma Ops — Failure spike: 5 of 5 failed (100%) in the last 60 min"
    ]
    assert rules(at)["Failure spike"][2].startswith("firing since ")
    assert history(at) == [("Failure spike", "firing", "delivered")]
    assert any(c.value.startswith("Notifications go to: `json://127.0.0.1:") for c in at.caption)


def test_an_admin_sends_a_test_notification_once_per_click(
    app_env: SandboxServer, json_receiver: JsonReceiver, monkeypatch: pytest.MonkeyPatch, store: IntentStore
) -> None:
    monkeypatch.setenv("ALMA_OPS_ALERT_URLS", json_receiver.url())
    at = open_app(PAGE)  # local mode without sign-in: everyone is admin

    at.button(key="send_test_notification").click().run()
    assert [s.value for s in at.success] == ["Test notification delivered to 1 target."]
    at.run()  # a rerun is no new click
    assert [got.title for got in json_receiver.received] == ["Alma Ops — test notification"]
    assert history(at) == [("Test", "test", "delivered")]

    json_receiver.status = 500
    at.button(key="send_test_notification").click().run()
    assert len(at.error) == 1 and at.error[0].value.startswith("Test notification failed: `not accepted by json://")
    entries = store.audit_entries(AuditFilter(actions=("test_notification",)))
    assert [(e.who, e.outcome) for e in entries] == [("anonymous", "failed"), ("anonymous", "ok")]
    assert entries[0].idempotency_key != entries[1].idempotency_key


def test_a_viewer_sees_the_alerts_but_no_test_button(app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALMA_OPS_ANONYMOUS_ROLE", "viewer")
    at = open_app(PAGE)
    assert len(rules(at)) == 4
    assert TEST_BUTTON not in [b.label for b in at.button]
