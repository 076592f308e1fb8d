"""The sign-in gate and roles on the whole app: each role sees exactly its pages and controls, a visitor who is
not signed in sees the sign-in screen only, and a page run on its own checks the role again."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.gateway import StripeGateway
from tests.conftest import ROOT, TEST_KEY, SandboxServer
from tests.pages.conftest import APP_TIMEOUT, create_intent
from tests.pages.test_app import WRITE_LABELS, labels, rendered_text

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-secret-for-tests",
    "client_id": "alma-ops",
    "client_secret": "client-secret-for-tests",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",  # never fetched here
}
ROLES = {
    "admin": {"emails": ["lea@example.com"]},
    "operator": {"groups": ["alma-ops"]},
    "viewer": {"domains": ["example.com"]},
}
SIGNED_OUT = {"is_logged_in": False}
VIEWER = {"is_logged_in": True, "sub": "u-tom", "email": "tom@example.com", "name": "Tom Viewer"}
OPERATOR = {**VIEWER, "sub": "u-olga", "email": "olga@example.com", "name": "Olga Ops", "groups": ["alma-ops"]}
ADMIN = {"is_logged_in": True, "sub": "u-lea", "email": "lea@example.com", "name": "Léa Admin"}
NOBODY = {"is_logged_in": True, "sub": "u-eve", "email": "eve@elsewhere.org", "name": "Eve"}

VIEWER_PAGES = {"app_pages/overview.py": "Overview", "app_pages/intents.py": "Intents"}
VIEWER_PAGES["app_pages/expiry_watch.py"] = "Expiry watch"
VIEWER_PAGES["app_pages/reports.py"] = "Reports"
DATA_REQUESTS = ("GET /v1/payment_intents", "GET /v1/events", "GET /v1/refunds", "GET /v1/balance_transactions")


def signed_in_app(user: dict[str, Any], secrets: dict[str, Any] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT)
    at.secrets.update(secrets if secrets is not None else {"auth": AUTH, "roles": ROLES})
    at.user = dict(user)
    return at.run()


def switch(at: AppTest, page: str, **query: str) -> AppTest:
    at.switch_page(page)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    return " ".join([t.value for t in at.sidebar.text] + [c.value for c in at.sidebar.caption])


def registered(at: AppTest, page: str) -> bool:
    try:
        at.switch_page(page)
    except ValueError:
        return False
    return True


def data_requests(sandbox: SandboxServer) -> int:
    return sum(count for route, count in sandbox.stats().items() if route.startswith(DATA_REQUESTS))


def test_a_visitor_who_is_not_signed_in_sees_only_the_sign_in_screen(app_env: SandboxServer) -> None:
    before = data_requests(app_env)
    at = signed_in_app(SIGNED_OUT)

    assert not at.exception
    assert [t.value for t in at.title] == ["Alma Ops"]
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.metric and not at.dataframe and not at.sidebar.children
    for page in (*VIEWER_PAGES, "app_pages/lab.py", "app_pages/return.py"):
        assert not registered(at, page), page
    assert data_requests(app_env) == before, "nothing is synced or read for a visitor"


def test_a_signed_in_person_without_a_role_gets_no_access_and_log_out(app_env: SandboxServer) -> None:
    at = signed_in_app(NOBODY)

    assert [t.value for t in at.title] == ["No access"]
    assert "eve@elsewhere.org" in at.text[0].value
    assert [b.label for b in at.button] == ["Log out"]
    assert not at.metric and not at.dataframe
    assert not registered(at, "app_pages/overview.py")


def test_an_unverified_email_gives_no_role(app_env: SandboxServer) -> None:
    at = signed_in_app({**ADMIN, "email_verified": False})
    assert [t.value for t in at.title] == ["No access"]


def test_log_out_leads_back_to_the_sign_in_screen(app_env: SandboxServer) -> None:
    at = signed_in_app(VIEWER)
    next(b for b in at.sidebar.button if b.label == "Log out").click()
    at.run()
    assert at.user == {"is_logged_in": False}

    at.run()  # the browser comes back from the provider's logout: a new run, signed out
    assert [b.label for b in at.button] == ["Log in"]


def test_viewer_sees_overview_intents_and_expiry_watch_without_a_write_control(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    create_intent(gateway, 7_500)
    at = signed_in_app(VIEWER)

    assert "Tom Viewer · viewer" in sidebar_text(at)
    assert "Log out" in {b.label for b in at.sidebar.button}
    for page, title in VIEWER_PAGES.items():
        switch(at, page)
        assert [t.value for t in at.title] == [title], page
        assert not labels(at) & WRITE_LABELS, page
    assert not registered(at, "app_pages/lab.py")


def test_operator_also_has_the_test_lab(app_env: SandboxServer) -> None:
    at = signed_in_app(OPERATOR)

    assert "Olga Ops · operator" in sidebar_text(at)
    switch(at, "app_pages/lab.py")
    assert [t.value for t in at.title] == ["Test lab"]
    assert {"Create test intent", "+61 min"} <= labels(at)


def test_admin_has_every_page(app_env: SandboxServer) -> None:
    at = signed_in_app(ADMIN)

    assert "Léa Admin · admin" in sidebar_text(at)
    for page in (*VIEWER_PAGES, "app_pages/lab.py", "app_pages/audit.py"):
        switch(at, page)
        assert not at.error, page


def test_no_token_reaches_the_page(app_env: SandboxServer) -> None:
    at = signed_in_app({**ADMIN, "tokens": {"id": "eyJ-id-token-for-tests", "access": "access-token-for-tests"}})
    assert "Léa Admin · admin" in sidebar_text(at)
    text = rendered_text(at)
    assert "token-for-tests" not in text and "secret-for-tests" not in text


@pytest.mark.parametrize(
    ("user", "page", "message"),
    [
        (VIEWER, "lab.py", "Your role does not include this page."),
        (SIGNED_OUT, "lab.py", "Sign in to see this page."),
        (SIGNED_OUT, "intents.py", "Sign in to see this page."),
        (NOBODY, "overview.py", "Your role does not include this page."),
    ],
)
def test_a_page_checks_the_role_itself(app_env: SandboxServer, user: dict[str, Any], page: str, message: str) -> None:
    """Run as its own script, without the entry script's navigation: the page still refuses."""
    at = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=APP_TIMEOUT)
    at.secrets.update({"auth": AUTH, "roles": ROLES})
    at.user = dict(user)
    at.run()

    assert [e.value for e in at.error] == [message]
    assert not labels(at) & WRITE_LABELS and not at.metric and not at.dataframe


# --- without [auth] ------------------------------------------------------------------------------------


def test_without_sign_in_local_mode_is_anonymous_admin_and_says_so(app_env: SandboxServer) -> None:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()

    assert "Sign-in is off: everyone is **anonymous** with the **admin** role" in sidebar_text(at)
    assert "Log out" not in {b.label for b in at.sidebar.button}
    switch(at, "app_pages/lab.py")
    assert "Create test intent" in labels(at)


@pytest.fixture
def test_mode(app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.delenv("ALMA_OPS_SANDBOX_URL")
    monkeypatch.setenv("STRIPE_API_BASE", app_env.base_url)
    monkeypatch.setenv("STRIPE_SECRET_KEY", TEST_KEY)
    return app_env


def test_without_sign_in_test_mode_is_read_only(test_mode: SandboxServer, gateway: StripeGateway) -> None:
    waiting = create_intent(gateway, 6_000).intent
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()

    assert "anonymous** with the **viewer** role" in sidebar_text(at)
    assert not registered(at, "app_pages/lab.py")
    switch(at, "app_pages/intents.py", intent=waiting.id)
    assert [h.value for h in at.subheader] == [f"Intent `{waiting.id}`"]
    assert not labels(at) & WRITE_LABELS


def test_the_anonymous_role_can_be_raised_in_test_mode(
    test_mode: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_OPS_ANONYMOUS_ROLE", "operator")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()

    assert "anonymous** with the **operator** role" in sidebar_text(at)
    switch(at, "app_pages/lab.py")
    assert "Create test intent" in labels(at)


# --- configuration errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"auth": AUTH}, "Configuration error: [auth] turns sign-in on but [roles] gives nobody a role"),
        ({"auth": AUTH, "roles": {"admins": {}}}, "Configuration error: [roles] has unknown entries ['admins']"),
        ({"auth": {**AUTH, "client_secret": ""}, "roles": ROLES}, "Configuration error: [auth] needs client_secret"),
    ],
)
def test_a_sign_in_configuration_that_cannot_work_is_reported_at_start(
    app_env: SandboxServer, secrets: dict[str, Any], message: str
) -> None:
    at = signed_in_app(ADMIN, secrets)

    assert not at.exception
    [error] = at.error
    assert error.value.startswith(message), error.value
    assert not at.metric and "secret-for-tests" not in rendered_text(at)


def test_an_unknown_anonymous_role_is_reported_at_start(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_OPS_ANONYMOUS_ROLE", "root")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()

    assert [e.value for e in at.error] == [
        "Configuration error: ALMA_OPS_ANONYMOUS_ROLE must be one of viewer, operator, admin; got 'root'."
    ]
