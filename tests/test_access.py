"""Roles from claims and the [roles] configuration: pure rules, no Streamlit."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.access import (
    ANONYMOUS,
    AccessConfigError,
    Permission,
    Role,
    RolesConfig,
    anonymous,
    anonymous_role,
    load_access_config,
    pages_for,
    parse_roles,
    permissions,
    principal,
    role_for,
)
from dashboard.settings import Mode, SettingsError

ROLES = parse_roles(
    {
        "admin": {"emails": ["Lea@Example.com"]},
        "operator": {"groups": ["alma-ops"], "emails": ["ops@partner.org"]},
        "viewer": {"domains": ["Example.com"]},
    }
)


def claims(**values: Any) -> dict[str, Any]:
    return {"sub": "user-1", **values}


# --- role_for ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "role"),
    [
        (claims(email="lea@example.com"), Role.ADMIN),
        (claims(email="LEA@EXAMPLE.COM", email_verified=True), Role.ADMIN),  # emails are case-insensitive
        (claims(email="ops@partner.org"), Role.OPERATOR),
        (claims(email="someone@partner.org", groups=["alma-ops"]), Role.OPERATOR),
        (claims(email="tom@example.com"), Role.VIEWER),  # by domain
        (claims(email="tom@EXAMPLE.com"), Role.VIEWER),  # domains are case-insensitive
        (claims(email="tom@mail.example.com"), None),  # a subdomain is another domain
        (claims(email="tom@example.com.evil.io"), None),
        (claims(email="tom@notexample.com"), None),
        (claims(email="nobody@elsewhere.org"), None),
        (claims(), None),  # no email, no groups
        (claims(groups=["Alma-Ops"]), None),  # groups are matched as the provider spells them
    ],
)
def test_role_for(user: dict[str, Any], role: Role | None) -> None:
    assert role_for(user, ROLES) is role


def test_the_highest_matching_role_wins() -> None:
    # lea@example.com matches viewer by domain and admin by email; in the operator group too.
    assert role_for(claims(email="lea@example.com", groups=["alma-ops"]), ROLES) is Role.ADMIN
    # tom matches viewer by domain and operator by group.
    assert role_for(claims(email="tom@example.com", groups=["alma-ops"]), ROLES) is Role.OPERATOR


def test_order_in_the_file_does_not_matter() -> None:
    reversed_order = parse_roles({"viewer": {"domains": ["example.com"]}, "admin": {"emails": ["lea@example.com"]}})
    assert role_for(claims(email="lea@example.com"), reversed_order) is Role.ADMIN


@pytest.mark.parametrize("flag", [False, "false", "False", " FALSE "])
def test_an_email_the_provider_says_is_unverified_counts_for_nothing(flag: object) -> None:
    assert role_for(claims(email="lea@example.com", email_verified=flag), ROLES) is None
    assert role_for(claims(email="tom@example.com", email_verified=flag), ROLES) is None


@pytest.mark.parametrize("flag", [True, "true", None])
def test_an_email_counts_unless_the_provider_says_unverified(flag: object) -> None:
    user = claims(email="lea@example.com") if flag is None else claims(email="lea@example.com", email_verified=flag)
    assert role_for(user, ROLES) is Role.ADMIN


def test_groups_still_count_when_the_email_is_unverified() -> None:
    user = claims(email="lea@example.com", email_verified=False, groups=["alma-ops"])
    assert role_for(user, ROLES) is Role.OPERATOR


def test_groups_come_from_the_configured_claim() -> None:
    config = parse_roles({"groups_claim": "roles", "operator": {"groups": ["alma-ops"]}})
    assert role_for(claims(roles=["alma-ops"]), config) is Role.OPERATOR
    assert role_for(claims(groups=["alma-ops"]), config) is None


@pytest.mark.parametrize("value", ["alma-ops", ("alma-ops", "x"), ["x", 3, "alma-ops"]])
def test_a_groups_claim_may_be_one_string_or_a_list(value: object) -> None:
    assert role_for(claims(groups=value), ROLES) is Role.OPERATOR


@pytest.mark.parametrize("value", [None, 3, {"alma-ops": True}, ["alma"]])
def test_a_groups_claim_of_another_shape_matches_no_group(value: object) -> None:
    assert role_for(claims(groups=value), ROLES) is None


@pytest.mark.parametrize("email", [None, 3, "not-an-address", ""])
def test_a_missing_or_odd_email_matches_no_email_or_domain(email: object) -> None:
    assert role_for(claims(email=email), ROLES) is None


def test_no_roles_table_gives_nobody_a_role() -> None:
    assert role_for(claims(email="lea@example.com", groups=["alma-ops"]), parse_roles(None)) is None
    assert parse_roles(None) == RolesConfig()


# --- principal -----------------------------------------------------------------------------------------


def test_principal_names_a_person_by_verified_email_and_shows_their_name() -> None:
    lea = principal(claims(email="Lea@Example.com", name="Léa Martin"), ROLES)
    assert (lea.who, lea.display_name, lea.role, lea.signed_in) == ("lea@example.com", "Léa Martin", Role.ADMIN, True)


def test_principal_without_a_verified_email_is_its_subject() -> None:
    user = principal(claims(email="lea@example.com", email_verified=False), ROLES)
    assert (user.who, user.display_name, user.role) == ("user-1", "user-1", None)


def test_principal_carries_no_token() -> None:
    user = principal(claims(email="lea@example.com", id_token="eyJsecret", access_token="at-secret"), ROLES)
    assert "secret" not in repr(user)


def test_anonymous_principal() -> None:
    user = anonymous(Role.VIEWER)
    assert (user.who, user.role, user.signed_in) == (ANONYMOUS, Role.VIEWER, False)


# --- permissions and pages -----------------------------------------------------------------------------


def test_each_role_s_pages_in_local_mode() -> None:
    assert pages_for(Role.VIEWER, Mode.LOCAL) == ("overview", "intents", "expiry_watch", "reports", "alerts", "return")
    assert pages_for(Role.OPERATOR, Mode.LOCAL) == (
        "overview",
        "intents",
        "expiry_watch",
        "reports",
        "alerts",
        "return",
        "test_lab",
    )
    assert pages_for(Role.ADMIN, Mode.LOCAL) == (
        *("overview", "intents", "expiry_watch", "reports", "alerts", "return", "test_lab", "audit"),
    )
    assert pages_for(None, Mode.LOCAL) == ()


def test_each_role_s_writes() -> None:
    assert not any(p.writes for p in permissions(Role.VIEWER, Mode.LOCAL))
    assert permissions(Role.OPERATOR, Mode.LOCAL) == {
        Permission.VIEW,
        Permission.TEST_LAB,
        Permission.ACT_ON_INTENTS,
        Permission.ADVANCE_CLOCK,
    }
    assert permissions(Role.ADMIN, Mode.LOCAL) == permissions(Role.OPERATOR, Mode.LOCAL) | {
        Permission.AUDIT,
        Permission.TEST_ALERTS,
    }


@pytest.mark.parametrize("mode", list(Mode))
def test_only_admins_send_a_test_notification_in_every_mode(mode: Mode) -> None:
    # Not a Stripe write: live mode keeps it, so the live deployment's delivery can be checked.
    assert not Permission.TEST_ALERTS.writes
    assert [role for role in Role if Permission.TEST_ALERTS in permissions(role, mode)] == [Role.ADMIN]
    assert all("alerts" in pages_for(role, mode) for role in Role)


def test_only_the_local_sandbox_has_a_clock_to_move() -> None:
    assert Permission.ADVANCE_CLOCK not in permissions(Role.ADMIN, Mode.TEST)
    assert {Permission.TEST_LAB, Permission.ACT_ON_INTENTS} <= permissions(Role.OPERATOR, Mode.TEST)


@pytest.mark.parametrize("role", list(Role))
def test_live_mode_is_read_only_for_every_role(role: Role) -> None:
    granted = permissions(role, Mode.LIVE)
    assert Permission.VIEW in granted
    assert not any(p.writes for p in granted)
    assert "test_lab" not in pages_for(role, Mode.LIVE)


def test_the_admin_still_reads_the_audit_trail_in_live_mode() -> None:
    assert pages_for(Role.ADMIN, Mode.LIVE) == (
        *("overview", "intents", "expiry_watch", "reports", "alerts", "return", "audit"),
    )


def test_principal_may() -> None:
    viewer = anonymous(Role.VIEWER)
    assert viewer.may(Permission.VIEW, Mode.LOCAL)
    assert not viewer.may(Permission.ACT_ON_INTENTS, Mode.LOCAL)
    assert not principal(claims(email="x@nowhere.org"), ROLES).may(Permission.VIEW, Mode.LOCAL)


def test_roles_rank_from_viewer_to_admin() -> None:
    assert [r.rank for r in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)] == [0, 1, 2]


# --- configuration errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"admins": {"emails": ["a@b.com"]}}, "unknown entries ['admins']"),
        ({"admin": {"email": ["a@b.com"]}}, "[roles.admin] has unknown keys ['email']"),
        ({"admin": ["a@b.com"]}, "[roles.admin] must be a table"),
        ({"admin": {"emails": "a@b.com"}}, "[roles.admin] emails must be a list of strings"),
        ({"viewer": {"groups": [""]}}, "[roles.viewer] groups must hold non-empty strings"),
        ({"viewer": {"groups": [3]}}, "must hold non-empty strings; got 3"),
        ({"operator": {"emails": ["lea"]}}, "addresses like name@example.com; got 'lea'"),
        ({"operator": {"emails": ["@example.com"]}}, "got '@example.com'"),
        ({"viewer": {"domains": ["@example.com"]}}, "domains must be like example.com (no @)"),
        ({"viewer": {"domains": ["localhost"]}}, "got 'localhost'"),
        ({"groups_claim": ""}, "groups_claim must be a claim name"),
        ({"groups_claim": ["groups"]}, "groups_claim must be a claim name"),
    ],
)
def test_a_roles_table_that_cannot_be_used_is_refused_with_a_clear_message(table: Any, message: str) -> None:
    with pytest.raises(AccessConfigError) as error:
        parse_roles(table)
    assert message in str(error.value)


def test_a_roles_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(AccessConfigError, match=r"\[roles\] must be a table"):
        parse_roles("admin")  # type: ignore[arg-type]  # not a table, on purpose


def test_access_config_errors_are_settings_errors() -> None:
    """The entry script shows every SettingsError as a configuration error at start."""
    assert issubclass(AccessConfigError, SettingsError)


def test_configured_values_are_trimmed() -> None:
    config = parse_roles({"admin": {"emails": [" Lea@Example.com "]}, "groups_claim": " grp "})
    assert config.groups_claim == "grp"
    assert role_for(claims(email="lea@example.com"), config) is Role.ADMIN


# --- the anonymous role and the whole configuration ----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "role"), [(Mode.LOCAL, Role.ADMIN), (Mode.TEST, Role.VIEWER), (Mode.LIVE, Role.VIEWER)]
)
def test_anonymous_role_defaults(mode: Mode, role: Role) -> None:
    assert anonymous_role({}, mode) is role
    assert anonymous_role({"ALMA_OPS_ANONYMOUS_ROLE": " "}, mode) is role


def test_anonymous_role_from_the_environment() -> None:
    assert anonymous_role({"ALMA_OPS_ANONYMOUS_ROLE": "Operator"}, Mode.TEST) is Role.OPERATOR
    assert anonymous_role({"ALMA_OPS_ANONYMOUS_ROLE": "viewer"}, Mode.LOCAL) is Role.VIEWER


def test_an_unknown_anonymous_role_is_refused() -> None:
    with pytest.raises(AccessConfigError, match="ALMA_OPS_ANONYMOUS_ROLE must be one of viewer, operator, admin"):
        anonymous_role({"ALMA_OPS_ANONYMOUS_ROLE": "root"}, Mode.LOCAL)


def test_an_operator_anonymous_role_still_cannot_write_live() -> None:
    role = anonymous_role({"ALMA_OPS_ANONYMOUS_ROLE": "admin"}, Mode.LIVE)
    assert not any(p.writes for p in permissions(role, Mode.LIVE))


AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-s3cret",
    "client_id": "alma-ops",
    "client_secret": "client-s3cret",
    "server_metadata_url": "http://127.0.0.1:9400/.well-known/openid-configuration",
}
ADMIN_ROLES = {"admin": {"emails": ["lea@example.com"]}}


def test_load_access_config() -> None:
    config = load_access_config({}, {"auth": AUTH, "roles": {"viewer": {"domains": ["example.com"]}}}, Mode.TEST)
    assert config.sign_in and config.anonymous_role is Role.VIEWER
    assert role_for(claims(email="a@example.com"), config.roles) is Role.VIEWER
    without = load_access_config({"ALMA_OPS_ANONYMOUS_ROLE": "operator"}, {}, Mode.TEST)
    assert not without.sign_in and without.anonymous_role is Role.OPERATOR


def test_sign_in_that_gives_nobody_a_role_is_refused_at_start() -> None:
    for roles in (None, {}, {"admin": {}}, {"viewer": {"emails": []}}):
        secrets = {"auth": AUTH} if roles is None else {"auth": AUTH, "roles": roles}
        with pytest.raises(AccessConfigError, match=r"\[roles\] gives nobody a role"):
            load_access_config({}, secrets, Mode.LOCAL)


def test_a_bad_anonymous_role_is_refused_even_with_sign_in_on() -> None:
    """Validated at start whatever the rest says, so turning sign-in off later cannot surprise anyone."""
    with pytest.raises(AccessConfigError):
        load_access_config({"ALMA_OPS_ANONYMOUS_ROLE": "guest"}, {"auth": AUTH, "roles": ADMIN_ROLES}, Mode.TEST)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_secret": ""}, "[auth] needs client_secret"),
        ({"cookie_secret": None, "client_id": " "}, "[auth] needs cookie_secret, client_id"),
        ({"redirect_uri": "localhost:8501/oauth2callback"}, "redirect_uri must be an absolute http(s) URL"),
        ({"server_metadata_url": "/.well-known/openid-configuration"}, "server_metadata_url must be an absolute"),
        ({"redirect_uri": "http://localhost:8501/"}, "redirect_uri must be this dashboard's address + /oauth2callback"),
        ({"expose_tokens": ["id"]}, "expose_tokens must be left out"),
    ],
)
def test_an_auth_section_that_cannot_sign_anyone_in_is_refused_at_start(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AccessConfigError) as error:
        load_access_config({}, {"auth": {**AUTH, **change}, "roles": ADMIN_ROLES}, Mode.LOCAL)
    assert message in str(error.value)
    assert "s3cret" not in str(error.value)


def test_an_auth_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(AccessConfigError, match=r"\[auth\] must be a table"):
        load_access_config({}, {"auth": "google", "roles": ADMIN_ROLES}, Mode.LOCAL)
