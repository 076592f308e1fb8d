"""Cancel and Capture on any intent's detail (Intents page): operators only, each behind a dialog that states the
amount, the result (or Stripe's code and message) shown after, an audit row for each attempt; the Audit page
(admin) filters and exports them."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.audit import AuditFilter
from dashboard.gateway import StripeGateway
from dashboard.store import IntentStore
from tests.conftest import ROOT, SandboxServer
from tests.pages.conftest import APP_TIMEOUT, Download, create_intent, press_hosted_button
from tests.pages.test_app import labels
from tests.pages.test_sign_in import ADMIN, AUTH, OPERATOR, ROLES, VIEWER

INTENTS = "app_pages/intents.py"


def detail(user: dict[str, Any], intent_id: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
    at.secrets.update({"auth": AUTH, "roles": ROLES})
    at.user = dict(user)
    at.run()
    at.switch_page(INTENTS)
    at.query_params["intent"] = intent_id
    at.run()
    assert not at.exception, at.exception
    return at


def held(gateway: StripeGateway, amount: int = 12_000) -> str:
    created = create_intent(gateway, amount, capture_method="manual")
    assert created.redirect_url
    press_hosted_button(created.redirect_url, "Authorize test payment")
    return created.intent.id


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_a_viewer_has_no_action_on_a_held_intent(app_env: SandboxServer, gateway: StripeGateway) -> None:
    at = detail(VIEWER, held(gateway))
    assert not {"Capture…", "Cancel payment…"} & labels(at)


def test_an_operator_captures_part_after_confirming_the_amount(
    app_env: SandboxServer, gateway: StripeGateway, store: IntentStore
) -> None:
    intent_id = held(gateway, 12_000)
    at = detail(OPERATOR, intent_id)
    assert any("€120.00 held; capture by" in c.value for c in at.caption)

    at.text_input(key=f"detail_capture_amount:{intent_id}").input("100")
    button(at, "Capture…").click()
    at.run()
    assert [w.value for w in at.warning if "Capture" in w.value] == [
        "Capture €100.00 of €120.00; the remaining €20.00 is released for good."
    ]
    assert gateway.retrieve_intent(intent_id).status == "requires_capture"  # nothing sent before confirming

    button(at, "Confirm capture").click()
    at.run()
    assert [s.value for s in at.success] == ["Captured €100.00 — status succeeded."]
    assert gateway.retrieve_intent(intent_id).amount_received == 10_000
    [row] = store.audit_entries(AuditFilter())
    assert (row.who, row.role, row.action, row.amount, row.outcome) == (
        "olga@example.com",
        "operator",
        "capture",
        10_000,
        "ok",
    )


def test_back_sends_nothing(app_env: SandboxServer, gateway: StripeGateway, store: IntentStore) -> None:
    intent_id = held(gateway)
    at = detail(OPERATOR, intent_id)
    button(at, "Cancel payment…").click()
    at.run()
    assert any(w.value.startswith("Cancel and release the €120.00 held") for w in at.warning)
    button(at, "Back").click()
    at.run()
    assert "Confirm cancel" not in labels(at)
    assert gateway.retrieve_intent(intent_id).status == "requires_capture"
    assert store.audit_entries(AuditFilter()) == []


def test_a_capture_beyond_what_is_held_is_refused_at_the_field(app_env: SandboxServer, gateway: StripeGateway) -> None:
    intent_id = held(gateway, 12_000)
    at = detail(OPERATOR, intent_id)
    at.text_input(key=f"detail_capture_amount:{intent_id}").input("120.01")
    button(at, "Capture…").click()
    at.run()
    assert any("Capturable:" in e.value for e in at.error)
    assert "Confirm capture" not in labels(at)


def test_an_operator_cancels_a_waiting_intent_and_a_stripe_error_shows_its_code(
    app_env: SandboxServer, gateway: StripeGateway, store: IntentStore
) -> None:
    waiting = create_intent(gateway, 7_000).intent
    at = detail(OPERATOR, waiting.id)
    assert "Capture…" not in labels(at)
    button(at, "Cancel payment…").click()
    at.run()
    assert any(w.value == "Cancel this €70.00 payment: the customer can no longer complete it." for w in at.warning)
    gateway.cancel_intent(waiting.id, "someone-else-canceled-it-first")  # meanwhile, elsewhere
    button(at, "Confirm cancel").click()
    at.run()
    [error] = at.error
    assert error.value.startswith("Could not cancel (`payment_intent_unexpected_state`): ")
    [row] = store.audit_entries(AuditFilter())
    assert (row.action, row.outcome, row.intent_id) == ("cancel", "payment_intent_unexpected_state", waiting.id)


@pytest.fixture
def audited(app_env: SandboxServer, gateway: StripeGateway) -> str:
    """An operator's capture, made through the detail page."""
    intent_id = held(gateway)
    at = detail(OPERATOR, intent_id)
    button(at, "Capture…").click()
    at.run()
    button(at, "Confirm capture").click()
    at.run()
    return intent_id


def audit_page(user: dict[str, Any]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
    at.secrets.update({"auth": AUTH, "roles": ROLES})
    at.user = dict(user)
    at.run()
    at.switch_page("app_pages/audit.py").run()
    assert not at.exception, at.exception
    return at


def test_the_admin_finds_the_operator_s_capture_and_exports_it(audited: str, downloads: list[Download]) -> None:
    """The CSV is built only on click (deferred): record the builder the page hands to Streamlit and run it."""
    at = audit_page(ADMIN)

    table = at.dataframe[0].value
    assert list(table["who"]) == ["olga@example.com"]
    assert list(table["action"]) == ["capture"] and list(table["outcome"]) == ["ok"]
    assert list(table["amount"]) == ["€120.00"]
    [row] = csv.DictReader(io.StringIO(downloads[-1].build().decode()))
    assert (row["who"], row["action"], row["intent_id"], row["amount_cents"], row["outcome"]) == (
        "olga@example.com",
        "capture",
        audited,
        "12000",
        "ok",
    )

    at.multiselect(key="audit_outcomes").set_value(["refused"]).run()
    assert at.dataframe[0].value.empty
    at.multiselect(key="audit_outcomes").set_value([]).run()
    at.selectbox(key="audit_who").set_value("olga@example.com").run()
    assert len(at.dataframe[0].value) == 1


def test_operators_and_viewers_have_no_audit_page(app_env: SandboxServer) -> None:
    for user in (OPERATOR, VIEWER):
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
        at.secrets.update({"auth": AUTH, "roles": ROLES})
        at.user = dict(user)
        at.run()
        with pytest.raises(ValueError):
            at.switch_page("app_pages/audit.py")
