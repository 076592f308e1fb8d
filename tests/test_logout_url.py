"""Log out never carries a sign-in token in an address (Streamlit's default would add `id_token_hint`)."""

from __future__ import annotations

import urllib.parse

from streamlit.web.server.starlette import starlette_auth_routes

import dashboard.ui_access  # noqa: F401  (importing it is what replaces Streamlit's logout address builder)


def test_the_logout_address_names_the_client_but_carries_no_id_token() -> None:
    address = starlette_auth_routes.build_logout_url(
        end_session_endpoint="https://id.example.com/logout",
        client_id="alma-ops",
        post_logout_redirect_uri="https://ops.example.com/oauth2callback",
        id_token="eyJ.header.payload.signature",
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(address).query)
    assert query["client_id"] == ["alma-ops"]
    assert query["post_logout_redirect_uri"] == ["https://ops.example.com/oauth2callback"]
    assert "id_token_hint" not in query and "eyJ" not in address
