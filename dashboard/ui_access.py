"""Sign-in gate and role checks: the Streamlit side of dashboard/access.py.

With an `[auth]` section in the secrets, a visitor who is not signed in gets the sign-in screen and nothing
else (no navigation, no services started, nothing read from the store); a signed-in person whom no `[roles]`
rule matches gets the "no access" page. Without `[auth]` everyone is anonymous with ALMA_OPS_ANONYMOUS_ROLE.
The entry script asks `gate()` once per run; every page asks `require()` again, so a page reached by URL does
not rely on the navigation having left it out. Only claims are read from st.user, never tokens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import NoReturn

import streamlit as st
from streamlit.auth_util import build_logout_url
from streamlit.navigation.page import StreamlitPage
from streamlit.web.server.starlette import starlette_auth_routes

from dashboard import access, ui
from dashboard.access import AccessConfig, Permission, Principal
from dashboard.settings import Settings

REFUSED = "Not available"


def _logout_url_without_token(
    end_session_endpoint: str, client_id: str, post_logout_redirect_uri: str, id_token: str | None = None
) -> str:
    """Streamlit 1.67's Log out sends the browser to the provider's end_session_endpoint with the ID token as
    `id_token_hint` in the address: a sign-in token in a URL (browser history, the provider's access log).
    OIDC RP-initiated logout also accepts `client_id` alone, so the token is left out."""
    return build_logout_url(end_session_endpoint, client_id, post_logout_redirect_uri, id_token=None)


# The logout route runs in this process (the server imports the app's modules): replaced once, on import.
starlette_auth_routes.build_logout_url = _logout_url_without_token  # type: ignore[attr-defined]  # not re-exported


def access_config(settings: Settings) -> AccessConfig:
    """Read on every run (it is a few dict look-ups); raises AccessConfigError, a SettingsError."""
    return access.load_access_config(os.environ, ui._secrets_mapping(), settings.mode)


def _claims() -> dict[str, object]:
    claims: dict[str, object] = dict(st.user.to_dict())
    claims.pop("tokens", None)  # never exposed (access.check_auth_section), and never kept if it were
    return claims


def current_principal(config: AccessConfig) -> Principal | None:
    """Who this run is for; None for a visitor who has not signed in while sign-in is on."""
    if not config.sign_in:
        return access.anonymous(config.anonymous_role)
    if not st.user.is_logged_in:
        return None
    return access.principal(_claims(), config.roles)


def _sign_in_screen() -> None:
    st.title("Alma Ops")
    st.write("Sign in with your company account to see Alma payments.")
    if st.button("Log in", type="primary"):
        st.login()


def _no_access_screen(who: Principal) -> None:
    st.title("No access")
    st.text(f"You are signed in as {who.display_name} ({who.who}).")  # claims are drawn as text
    st.write("No role in this dashboard includes you. Ask an admin to add your email or group to `[roles]`.")
    _log_out_button()


def _log_out_button() -> None:
    if st.button("Log out", key="log_out"):
        st.logout()


def _only_screen(screen: Callable[[], None], title: str) -> NoReturn:
    """`screen` as the only page, under every page's address too: a deep link (`/intents?intent=…`) shows it
    instead of Streamlit's "page not found" dialog over it."""
    addresses = [st.Page(screen, title=title, url_path=name) for name in access.PAGES]
    st.navigation([st.Page(screen, title=title, default=True), *addresses], position="hidden").run()
    st.stop()


def gate(settings: Settings) -> Principal:
    """Called by the entry script before its navigation: returns who may go on, or draws the sign-in screen or
    the "no access" page as the only page and ends the run."""
    config = access_config(settings)
    who = current_principal(config)
    if who is None:
        _only_screen(_sign_in_screen, "Sign in")
    if who.role is None:
        _only_screen(partial(_no_access_screen, who), "No access")
    return who


def _refusal(who: Principal) -> None:
    assert who.role is not None
    st.error(f"This page is not part of the {who.role.value} role here.")


def navigation(who: Principal, settings: Settings, pages: Mapping[str, StreamlitPage]) -> list[StreamlitPage]:
    """For st.navigation: `pages` (by access.PAGES name) that `who` may open, in their order. Every other
    address gets a hidden page that says no, so typing `/test_lab` is refused in words rather than answered
    with Streamlit's "page not found"."""
    allowed = access.pages_for(who.role, settings.mode)
    refusals = [
        st.Page(partial(_refusal, who), title=REFUSED, url_path=name, visibility="hidden")
        for name in access.PAGES
        if name not in allowed
    ]
    return [page for name, page in pages.items() if name in allowed] + refusals


def _asking() -> tuple[Principal | None, Settings]:
    settings = ui.app_settings()
    return current_principal(access_config(settings)), settings


def may(permission: Permission) -> bool:
    """Whether this run's person may `permission` here: for a control inside a page."""
    who, settings = _asking()
    return who is not None and who.may(permission, settings.mode)


def require(permission: Permission) -> Principal:
    """First line of every page: ends the run with a refusal unless the person may `permission`."""
    who, settings = _asking()
    if who is None or not who.may(permission, settings.mode):
        st.error("Your role does not include this page." if who else "Sign in to see this page.")
        st.stop()
    return who


def acting_person() -> Principal:
    """Who makes this run's writes, for dashboard.actions (which checks what they may do). Past the gate there
    always is someone; a callback running after a sign-out gets a person with no role, refused everything."""
    who, _ = _asking()
    return who if who is not None else Principal(access.ANONYMOUS, access.ANONYMOUS, None, signed_in=False)


def sidebar_identity(who: Principal) -> None:
    """Who is signed in and as what, or that sign-in is off; Log out for a signed-in person."""
    assert who.role is not None
    with st.sidebar:
        if who.signed_in:
            st.text(f"{who.display_name} · {who.role.value}")  # a name from the provider is drawn as text
            _log_out_button()
        else:
            st.caption(
                f"Sign-in is off: everyone is **anonymous** with the **{who.role.value}** role "
                f"({access.ANONYMOUS_ROLE_ENV})."
            )
