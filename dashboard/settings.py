"""Configuration from environment variables, or from st.secrets passed in by the UI layer."""

from __future__ import annotations

import enum
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dashboard.money import STRIPE_MAX_AMOUNT_CENTS
from dashboard.store.location import DEFAULT_LOCATION, StoreConfigError, StoreLocation, parse_location

# Alma's facts as the dashboard assumes them unless configured otherwise (the sandbox, a separate program,
# keeps its own copy of the same defaults).
ALMA_MIN_CENTS = 5_000  # 50 EUR
ALMA_MAX_CENTS = 500_000  # 5,000 EUR
AUTH_WINDOW_SECONDS = 3_600  # the hour a customer has on Alma's page
SANDBOX_PORT = 12111  # `python -m dashboard.sandbox`'s own default port

# Secret (sk_) and restricted (rk_) keys; the prefix says the mode.
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
KEY_PREFIXES = TEST_KEY_PREFIXES + LIVE_KEY_PREFIXES


class Mode(enum.StrEnum):
    LOCAL = "local"  # no key: the embedded sandbox with demo data
    TEST = "test"  # TEST_KEY_PREFIXES
    LIVE = "live"  # LIVE_KEY_PREFIXES: read-only

    @property
    def can_write(self) -> bool:
        return self is not Mode.LIVE

    def dashboard_url(self, intent_id: str) -> str | None:
        """The intent in Stripe's Dashboard; the local sandbox has none."""
        if self is Mode.LOCAL:
            return None
        prefix = "test/" if self is Mode.TEST else ""
        return f"https://dashboard.stripe.com/{prefix}payments/{intent_id}"


class SettingsError(ValueError):
    pass


def mode_for_key(key: str | None) -> Mode:
    if not key:
        return Mode.LOCAL
    if key.startswith(TEST_KEY_PREFIXES):
        return Mode.TEST
    if key.startswith(LIVE_KEY_PREFIXES):
        return Mode.LIVE
    raise SettingsError(f"STRIPE_SECRET_KEY must start with {', '.join(KEY_PREFIXES[:-1])} or {KEY_PREFIXES[-1]}.")


def mask_key(key: str | None) -> str:
    """sk_test_…4242: the prefix says the mode, four characters say which key; nothing else is shown."""
    if not key:
        return "none"
    prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), "")
    return f"{prefix}…{key[-4:]}" if len(key) > len(prefix) + 4 else f"{prefix}…"


# embedded: the dashboard process syncs (one laptop); worker: dashboards only read, `python -m dashboard.sync
# --every N` writes (a team on one PostgreSQL).
SyncMode = Literal["embedded", "worker"]
SYNC_MODES: tuple[SyncMode, ...] = ("embedded", "worker")

# The sandbox accepts any sk_test_ key; this one names itself so nobody mistakes it for a real one.
LOCAL_SANDBOX_KEY = "sk_test_alma_ops_local_sandbox"


# --- alerts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertSettings:
    failure_window_seconds: int = 3600
    failure_min_intents: int = 5
    failure_rate_percent: int = 50
    captures_due_seconds: int = 24 * 3600
    refund_failed_seconds: int = 24 * 3600  # a failed refund keeps the alert firing this long
    stale_seconds: int = 10 * 60
    cooldown_seconds: int = 6 * 3600
    urls: tuple[str, ...] = ()  # apprise URLs: secrets, never shown unmasked (see notify.mask_url)

    def __repr__(self) -> str:  # URLs carry tokens and passwords: never let them reach a log through repr()
        return f"AlertSettings(urls={len(self.urls)}, cooldown_seconds={self.cooldown_seconds})"


@dataclass(frozen=True)
class IntRange:
    """Where a whole-number setting must lie, both ends included; `note` says what an end means."""

    low: int
    high: int
    note: str = ""

    def __str__(self) -> str:
        return f"from {self.low:,} to {self.high:,}{self.note}"


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)  # int() would also take "1_000" and "٥"


def whole_number_setting(name: str, raw: str, allowed: IntRange) -> int:
    """`raw` as an int within `allowed`, or SettingsError naming the variable and its range."""
    if not _WHOLE_NUMBER.fullmatch(raw) or not allowed.low <= int(raw) <= allowed.high:
        raise SettingsError(f"{name} must be a whole number {allowed}, got {raw!r}.")
    return int(raw)


@dataclass(frozen=True)
class AlertKnob:
    key: str  # in [alerts]; the environment variable is ALMA_OPS_ALERT_<KEY upper-cased>
    field: str  # of AlertSettings
    unit_seconds: int  # 1: a plain count
    low: int
    high: int

    @property
    def env_name(self) -> str:
        return f"ALMA_OPS_ALERT_{self.key.upper()}"


ALERT_KNOBS: tuple[AlertKnob, ...] = (
    AlertKnob("failure_window_minutes", "failure_window_seconds", 60, 1, 24 * 60),
    AlertKnob("failure_min_intents", "failure_min_intents", 1, 1, 100_000),
    AlertKnob("failure_rate_percent", "failure_rate_percent", 1, 1, 100),
    AlertKnob("captures_due_hours", "captures_due_seconds", 3600, 1, 7 * 24),  # the capture window is 7 days
    AlertKnob("refund_failed_hours", "refund_failed_seconds", 3600, 1, 30 * 24),
    AlertKnob("stale_minutes", "stale_seconds", 60, 1, 24 * 60),
    AlertKnob("cooldown_hours", "cooldown_seconds", 3600, 1, 7 * 24),
)
URLS_ENV = "ALMA_OPS_ALERT_URLS"
# Apprise URLs are separated by whitespace, or by a comma when the next one starts (a comma inside a URL,
# as in mailto://…?to=a@x,b@y, stays).
_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(text: str) -> tuple[str, ...]:
    return tuple(part for part in _URL_SEPARATOR.split(text.strip()) if part)


def load_alert_settings(env: Mapping[str, str], secrets: Mapping[str, Any] | None = None) -> AlertSettings:
    """Environment first, then `[alerts]` of secrets.toml, then the defaults. Raises SettingsError naming the
    variable of the first value that is not a whole number in its range. URLs are only split here
    (load_settings has apprise check them)."""
    section = (secrets or {}).get("alerts") or {}
    if not isinstance(section, Mapping):
        raise SettingsError("[alerts] in secrets.toml must be a table, e.g. [alerts] then cooldown_hours = 6.")

    def pick(env_name: str, key: str) -> Any:
        value = env.get(env_name)
        return value if value not in (None, "") else section.get(key)

    values: dict[str, Any] = {}
    for knob in ALERT_KNOBS:
        raw = pick(knob.env_name, knob.key)
        if raw in (None, ""):
            continue
        name = f"{knob.env_name} ([alerts] {knob.key})"
        values[knob.field] = (
            whole_number_setting(name, str(raw).strip(), IntRange(knob.low, knob.high)) * knob.unit_seconds
        )
    urls = pick(URLS_ENV, "urls")
    if isinstance(urls, str):
        values["urls"] = split_urls(urls)
    elif isinstance(urls, Sequence):
        values["urls"] = tuple(url for item in urls for url in split_urls(str(item)))
    elif urls is not None:
        raise SettingsError(f"{URLS_ENV} ([alerts] urls) must be text or a list of apprise URLs.")
    return AlertSettings(**values)


@dataclass(frozen=True)
class Settings:
    secret_key: str | None = None
    api_base: str | None = None  # unset: Stripe; set: e.g. the sandbox
    db: str = DEFAULT_LOCATION  # ALMA_OPS_DB: a SQLite file path, or a sqlite:/// or postgresql:// URL
    sync_mode: SyncMode = "embedded"
    lookback_days: int = 90
    auth_window_seconds: int = AUTH_WINDOW_SECONDS
    alma_min_cents: int = ALMA_MIN_CENTS
    alma_max_cents: int = ALMA_MAX_CENTS
    refresh_seconds: int = 15
    demo_intents: int = 300
    public_url: str = "http://localhost:8501"  # where Stripe sends the customer back (the return page)
    sandbox_port: int = 0  # local mode starts the sandbox here; 0: any free port
    sandbox_url: str | None = None  # local mode: use this already-running sandbox instead of starting one
    timezone: str = "Europe/Paris"  # IANA name; pages show datetimes in it
    alerts: AlertSettings = AlertSettings()

    @property
    def mode(self) -> Mode:
        return mode_for_key(self.secret_key)

    @property
    def db_location(self) -> StoreLocation:
        return parse_location(self.db)

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, None for a database server."""
        return self.db_location.sqlite_path

    @property
    def masked_key(self) -> str:
        return mask_key(self.secret_key)

    @property
    def return_url(self) -> str:
        return self.public_url.rstrip("/") + "/return"

    def __repr__(self) -> str:  # never let a key reach a log through repr()
        return f"Settings(mode={self.mode.value}, key={self.masked_key}, api_base={self.api_base!r})"


# A refresh below 2 s would spend the rate limit the merchant's checkout shares (0 meant ~700 calls a second).
REFRESH_SECONDS_RANGE = IntRange(2, 3_600)
_ENV_INT: dict[str, tuple[str, IntRange]] = {
    "ALMA_OPS_LOOKBACK_DAYS": ("lookback_days", IntRange(1, 3_650)),
    "ALMA_OPS_AUTH_WINDOW_SECONDS": ("auth_window_seconds", IntRange(1, 86_400)),
    "ALMA_OPS_MIN_CENTS": ("alma_min_cents", IntRange(1, STRIPE_MAX_AMOUNT_CENTS)),
    "ALMA_OPS_MAX_CENTS": ("alma_max_cents", IntRange(1, STRIPE_MAX_AMOUNT_CENTS)),
    "ALMA_OPS_REFRESH_SECONDS": ("refresh_seconds", REFRESH_SECONDS_RANGE),
    "ALMA_OPS_DEMO_INTENTS": ("demo_intents", IntRange(0, 100_000)),
    "ALMA_OPS_SANDBOX_PORT": ("sandbox_port", IntRange(0, 65_535, " (0: any free port)")),
}
_WEB_ADDRESS = re.compile(r"https?://[^\s/?#]+[^\s]*", re.ASCII | re.IGNORECASE)


def load_settings(env: Mapping[str, str], secrets: Mapping[str, Any] | None = None) -> Settings:
    """Environment wins over secrets, so a deployment can override a checked-out secrets.toml."""
    secrets = secrets or {}
    if str(env.get("STRIPE_LOG", "")).strip().lower() == "debug":
        # stripe-python then prints every raw response body to stderr, client secrets included.
        raise SettingsError(
            "STRIPE_LOG=debug would log Stripe's raw responses, client secrets included; "
            "use STRIPE_LOG=info or leave it unset."
        )

    def pick(name: str) -> str | None:
        value = env.get(name) or secrets.get(name)
        return str(value).strip() if value not in (None, "") else None

    values: dict[str, Any] = {
        "secret_key": pick("STRIPE_SECRET_KEY"),
    }
    if db := pick("ALMA_OPS_DB"):
        try:
            parse_location(db)  # refused now, before anything is created
        except StoreConfigError as error:
            raise SettingsError(str(error)) from None
        values["db"] = db
    if sync_mode := pick("ALMA_OPS_SYNC"):
        if sync_mode not in SYNC_MODES:
            raise SettingsError(f"ALMA_OPS_SYNC must be embedded or worker, got {sync_mode!r}.")
        values["sync_mode"] = sync_mode
    for name, field in (
        ("STRIPE_API_BASE", "api_base"),
        ("ALMA_OPS_PUBLIC_URL", "public_url"),
        ("ALMA_OPS_SANDBOX_URL", "sandbox_url"),
    ):
        if url := pick(name):
            if not _WEB_ADDRESS.fullmatch(url):
                raise SettingsError(f"{name} must be an http:// or https:// address, got {url!r}.")
            values[field] = url
    if tz := pick("ALMA_OPS_TIMEZONE"):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            message = f"ALMA_OPS_TIMEZONE must be an IANA zone like Europe/Paris, got {tz!r}."
            raise SettingsError(message) from None
        values["timezone"] = tz
    for name, (field, allowed) in _ENV_INT.items():
        if (raw := pick(name)) is not None:
            values[field] = whole_number_setting(name, raw, allowed)
    values["alerts"] = load_alert_settings(env, secrets)
    settings = Settings(**values)
    mode_for_key(settings.secret_key)  # reject a malformed key now, not at the first request
    if settings.alma_max_cents < settings.alma_min_cents:
        raise SettingsError(
            f"ALMA_OPS_MIN_CENTS ({settings.alma_min_cents:,}) must not be above ALMA_OPS_MAX_CENTS "
            f"({settings.alma_max_cents:,})."
        )
    if settings.alerts.urls:
        from dashboard.notify import check_urls  # apprise loads ~180 plugins: only when alerts are configured

        check_urls(settings.alerts.urls)
    return settings
