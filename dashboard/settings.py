"""Configuration from environment variables, or from st.secrets passed in by the UI layer."""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# The sandbox accepts any sk_test_ key; this one names itself so nobody mistakes it for a real one.
LOCAL_SANDBOX_KEY = "sk_test_alma_ops_local_sandbox"


@dataclass(frozen=True)
class Settings:
    secret_key: str | None = None
    api_base: str | None = None  # unset: Stripe; set: e.g. the sandbox
    db_path: Path = Path(".data/alma_ops.sqlite3")
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

    @property
    def mode(self) -> Mode:
        return mode_for_key(self.secret_key)

    @property
    def masked_key(self) -> str:
        return mask_key(self.secret_key)

    @property
    def return_url(self) -> str:
        return self.public_url.rstrip("/") + "/return"

    def __repr__(self) -> str:  # never let a key reach a log through repr()
        return f"Settings(mode={self.mode.value}, key={self.masked_key}, api_base={self.api_base!r})"


_ENV_INT = {
    "ALMA_OPS_LOOKBACK_DAYS": "lookback_days",
    "ALMA_OPS_AUTH_WINDOW_SECONDS": "auth_window_seconds",
    "ALMA_OPS_MIN_CENTS": "alma_min_cents",
    "ALMA_OPS_MAX_CENTS": "alma_max_cents",
    "ALMA_OPS_REFRESH_SECONDS": "refresh_seconds",
    "ALMA_OPS_DEMO_INTENTS": "demo_intents",
    "ALMA_OPS_SANDBOX_PORT": "sandbox_port",
}


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
        "api_base": pick("STRIPE_API_BASE"),
    }
    if db := pick("ALMA_OPS_DB"):
        values["db_path"] = Path(db)
    if url := pick("ALMA_OPS_PUBLIC_URL"):
        values["public_url"] = url
    if url := pick("ALMA_OPS_SANDBOX_URL"):
        values["sandbox_url"] = url
    if tz := pick("ALMA_OPS_TIMEZONE"):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            message = f"ALMA_OPS_TIMEZONE must be an IANA zone like Europe/Paris, got {tz!r}."
            raise SettingsError(message) from None
        values["timezone"] = tz
    for name, field in _ENV_INT.items():
        if (raw := pick(name)) is not None:
            try:
                values[field] = int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, got {raw!r}.") from None
    settings = Settings(**values)
    mode_for_key(settings.secret_key)  # reject a malformed key now, not at the first request
    if settings.alma_min_cents <= 0 or settings.alma_max_cents < settings.alma_min_cents:
        raise SettingsError("ALMA_OPS_MIN_CENTS must be positive and not above ALMA_OPS_MAX_CENTS.")
    return settings
