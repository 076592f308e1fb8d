"""Who may see and do what: roles from sign-in claims and the `[roles]` configuration.

Pure functions over plain data (the claims are st.user's dict, the configuration is st.secrets' `[roles]`
table as a dict), so the rules are unit-tested without Streamlit. The UI glue (dashboard/ui_access.py) asks
them once per run and every page asks again before drawing.

    [roles]
    groups_claim = "groups"            # optional: the claim that lists a user's groups
    [roles.admin]
    emails = ["lea@example.com"]
    [roles.operator]
    groups = ["alma-ops"]
    [roles.viewer]
    domains = ["example.com"]          # any verified address @example.com (not its subdomains)

The highest matching role wins. An email or a domain counts only when the provider does not say
`email_verified = false`: anyone can type an unverified address into some providers' sign-up form.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.settings import Mode, SettingsError

ANONYMOUS = "anonymous"
ANONYMOUS_ROLE_ENV = "ALMA_OPS_ANONYMOUS_ROLE"
DEFAULT_GROUPS_CLAIM = "groups"


class AccessConfigError(SettingsError):
    """A `[roles]` table or ALMA_OPS_ANONYMOUS_ROLE that cannot be used; shown at start like any setting."""


class Role(enum.Enum):
    # Declared from least to most: the order is the rank (the highest matching role wins).
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Permission(enum.Enum):
    VIEW = "view"  # Overview, Intents (detail included), Expiry watch, Reports, Alerts, the return page
    TEST_LAB = "test_lab"  # create test intents and open their approve/decline page
    ACT_ON_INTENTS = "act_on_intents"  # cancel and capture any intent
    ADVANCE_CLOCK = "advance_clock"  # move the local sandbox's clock
    AUDIT = "audit"  # read and export the audit trail
    # Send a test notification from the Alerts page. Not a write: it moves no money and touches no Stripe
    # object, so live mode allows it too (the live deployment's alert delivery is the one worth checking).
    TEST_ALERTS = "test_alerts"

    @property
    def writes(self) -> bool:
        return self in _WRITES


_WRITES = frozenset({Permission.TEST_LAB, Permission.ACT_ON_INTENTS, Permission.ADVANCE_CLOCK})

# Each role's grants include the ones of every role below it.
_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.OPERATOR: frozenset(
        {Permission.VIEW, Permission.TEST_LAB, Permission.ACT_ON_INTENTS, Permission.ADVANCE_CLOCK}
    ),
    Role.ADMIN: frozenset(Permission),
}


# Every page by its URL path, and what it takes to open it.
PAGES: dict[str, Permission] = {
    "overview": Permission.VIEW,
    "intents": Permission.VIEW,
    "expiry_watch": Permission.VIEW,
    "reports": Permission.VIEW,  # finance: what money moved, per month or week
    "alerts": Permission.VIEW,  # the rules, their state and the notifications sent (the test button: admins)
    "return": Permission.VIEW,  # where a tester lands back from the approve/decline page
    "test_lab": Permission.TEST_LAB,
    "audit": Permission.AUDIT,
}


def permissions(role: Role | None, mode: Mode) -> frozenset[Permission]:
    """What `role` may do in `mode`. A live key is read-only for every role; only the local sandbox has a
    clock to move. No role (signed in, matched by nothing): nothing at all."""
    if role is None:
        return frozenset()
    granted = _GRANTS[role]
    if not mode.can_write:
        granted = frozenset(p for p in granted if not p.writes)
    if mode is not Mode.LOCAL:
        granted = granted - {Permission.ADVANCE_CLOCK}
    return granted


def pages_for(role: Role | None, mode: Mode) -> tuple[str, ...]:
    """The pages `role` may open in `mode`, in PAGES order."""
    granted = permissions(role, mode)
    return tuple(page for page, needed in PAGES.items() if needed in granted)


# --- configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleRule:
    """Who gets one role: any listed email, any listed group, or any email in a listed domain."""

    emails: frozenset[str] = frozenset()  # lower-cased
    groups: frozenset[str] = frozenset()  # as the provider spells them
    domains: frozenset[str] = frozenset()  # lower-cased, without "@"

    @property
    def grants_anyone(self) -> bool:
        return bool(self.emails or self.groups or self.domains)


@dataclass(frozen=True)
class RolesConfig:
    rules: tuple[tuple[Role, RoleRule], ...] = ()  # highest role first
    groups_claim: str = DEFAULT_GROUPS_CLAIM

    @property
    def grants_anyone(self) -> bool:
        return any(rule.grants_anyone for _, rule in self.rules)


_RULE_KEYS = ("emails", "groups", "domains")


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise AccessConfigError(f'{where} must be a list of strings, like ["a", "b"]; got {value!r}.')
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise AccessConfigError(f"{where} must hold non-empty strings; got {item!r}.")
        names.append(item.strip())
    return names


def _rule(role: Role, table: Any) -> RoleRule:
    where = f"[roles.{role.value}]"
    if not isinstance(table, Mapping):
        raise AccessConfigError(f"{where} must be a table with emails, groups or domains.")
    if unknown := sorted(set(table) - set(_RULE_KEYS)):
        raise AccessConfigError(f"{where} has unknown keys {unknown}; use emails, groups and domains.")
    emails = [e.lower() for e in _names(table.get("emails", []), f"{where} emails")]
    if bad := [e for e in emails if e.count("@") != 1 or e.startswith("@") or e.endswith("@")]:
        raise AccessConfigError(f"{where} emails must be addresses like name@example.com; got {bad[0]!r}.")
    domains = [d.lower() for d in _names(table.get("domains", []), f"{where} domains")]
    if bad := [d for d in domains if "@" in d or "." not in d or any(c.isspace() for c in d)]:
        raise AccessConfigError(f"{where} domains must be like example.com (no @); got {bad[0]!r}.")
    groups = _names(table.get("groups", []), f"{where} groups")
    return RoleRule(frozenset(emails), frozenset(groups), frozenset(domains))


def parse_roles(table: Mapping[str, Any] | None) -> RolesConfig:
    """The `[roles]` table (absent: nobody gets a role by sign-in). Unknown role names and keys are errors,
    so a typo such as `[roles.admins]` or `email = ` cannot silently lock someone out or let someone in."""
    if table is None:
        return RolesConfig()
    if not isinstance(table, Mapping):
        raise AccessConfigError("[roles] must be a table with [roles.admin], [roles.operator], [roles.viewer].")
    known = {role.value for role in Role}
    if unknown := sorted(set(table) - known - {"groups_claim"}):
        raise AccessConfigError(f"[roles] has unknown entries {unknown}; roles are admin, operator and viewer.")
    claim = table.get("groups_claim", DEFAULT_GROUPS_CLAIM)
    if not isinstance(claim, str) or not claim.strip():
        raise AccessConfigError(f"[roles] groups_claim must be a claim name like 'groups'; got {claim!r}.")
    ordered = sorted((role for role in Role if role.value in table), key=lambda r: r.rank, reverse=True)
    return RolesConfig(tuple((role, _rule(role, table[role.value])) for role in ordered), claim.strip())


def anonymous_role(env: Mapping[str, str], mode: Mode) -> Role:
    """The role of everyone when sign-in is off: ALMA_OPS_ANONYMOUS_ROLE, else admin on the local sandbox
    (`make run` stays a one-command demo) and viewer against Stripe (test mode is read-only unless asked)."""
    raw = (env.get(ANONYMOUS_ROLE_ENV) or "").strip()
    if not raw:
        return Role.ADMIN if mode is Mode.LOCAL else Role.VIEWER
    try:
        return Role(raw.lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise AccessConfigError(f"{ANONYMOUS_ROLE_ENV} must be one of {choices}; got {raw!r}.") from None


_AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


def check_auth_section(table: Any) -> None:
    """The `[auth]` section Streamlit's st.login reads, checked at start rather than at the first click on
    Log in. Error messages name keys, never values: two of them are secrets."""
    if not isinstance(table, Mapping):
        raise AccessConfigError("[auth] must be a table with " + ", ".join(_AUTH_KEYS) + ".")
    if missing := [key for key in _AUTH_KEYS if not str(table.get(key) or "").strip()]:
        raise AccessConfigError(f"[auth] needs {', '.join(missing)} (one provider, in [auth] itself).")
    for key in ("redirect_uri", "server_metadata_url"):
        if not str(table[key]).startswith(("http://", "https://")):
            raise AccessConfigError(f"[auth] {key} must be an absolute http(s) URL.")
    if not str(table["redirect_uri"]).endswith("/oauth2callback"):
        raise AccessConfigError("[auth] redirect_uri must be this dashboard's address + /oauth2callback.")
    if table.get("expose_tokens"):
        # Streamlit would then hand the provider's tokens to every page; Alma Ops needs none of them.
        raise AccessConfigError("[auth] expose_tokens must be left out: Alma Ops never reads sign-in tokens.")


@dataclass(frozen=True)
class AccessConfig:
    """How this deployment decides who is who: sign-in on or off, the role rules, the anonymous role."""

    sign_in: bool  # an [auth] section exists: st.login is in front of every page
    roles: RolesConfig
    anonymous_role: Role  # everyone's role when sign_in is False


def load_access_config(env: Mapping[str, str], secrets: Mapping[str, Any], mode: Mode) -> AccessConfig:
    """Checked at start: a sign-in that grants nobody a role would lock every user out, so it is refused."""
    config = AccessConfig("auth" in secrets, parse_roles(secrets.get("roles")), anonymous_role(env, mode))
    if config.sign_in:
        check_auth_section(secrets["auth"])
    if config.sign_in and not config.roles.grants_anyone:
        raise AccessConfigError(
            "[auth] turns sign-in on but [roles] gives nobody a role; list emails, groups or domains under "
            "[roles.admin], [roles.operator] or [roles.viewer]."
        )
    return config


# --- who is asking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The person a page is drawn for, as the audit trail and the sidebar name them. Never holds a token."""

    who: str  # the verified email, else the provider's subject, else "anonymous"
    display_name: str  # the name claim, else `who`
    role: Role | None  # None: signed in, but no rule matches
    signed_in: bool

    def may(self, permission: Permission, mode: Mode) -> bool:
        return permission in permissions(self.role, mode)


def anonymous(role: Role) -> Principal:
    return Principal(ANONYMOUS, ANONYMOUS, role, signed_in=False)


def _verified_email(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    verified = claims.get("email_verified")
    # Some providers send the flag as the string "false".
    if verified is False or (isinstance(verified, str) and verified.strip().lower() == "false"):
        return None
    return email.strip().lower()


def _groups(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    value = claims.get(claim)
    if isinstance(value, str):  # a provider that sends one group as a plain string
        return frozenset({value})
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def role_for(claims: Mapping[str, Any], config: RolesConfig) -> Role | None:
    """The highest role whose rule matches the claims; None when none does."""
    email = _verified_email(claims)
    domain = email.rpartition("@")[2] if email else None
    groups = _groups(claims, config.groups_claim)
    for role, rule in config.rules:  # highest first
        if (email in rule.emails) or (domain in rule.domains) or (groups & rule.groups):
            return role
    return None


def principal(claims: Mapping[str, Any], config: RolesConfig) -> Principal:
    """A signed-in user from their claims (st.user.to_dict())."""
    email = _verified_email(claims)
    subject = claims.get("sub")
    who = email or (str(subject) if subject else ANONYMOUS)
    name = claims.get("name")
    display = name.strip() if isinstance(name, str) and name.strip() else who
    return Principal(who, display, role_for(claims, config), signed_in=True)
