from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.settings import LOCAL_SANDBOX_KEY, Mode, Settings, SettingsError, load_settings, mask_key, mode_for_key

LIVE_KEY = "sk_live_fake_for_tests_9876"  # not a key: no long run a scanner takes for one


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        (None, Mode.LOCAL),
        ("", Mode.LOCAL),
        ("sk_test_abc", Mode.TEST),
        ("rk_test_abc", Mode.TEST),
        ("sk_live_abc", Mode.LIVE),
        ("rk_live_abc", Mode.LIVE),
    ],
)
def test_mode_from_key_prefix(key: str | None, mode: Mode) -> None:
    assert mode_for_key(key) is mode


def test_only_live_mode_is_read_only() -> None:
    assert [m for m in Mode if not m.can_write] == [Mode.LIVE]


@pytest.mark.parametrize("key", ["pk_test_abc", "whsec_abc", "sk_abc"])
def test_malformed_key_refused(key: str) -> None:
    with pytest.raises(SettingsError):
        load_settings({"STRIPE_SECRET_KEY": key})


def test_mask_shows_prefix_and_last_four_only() -> None:
    assert mask_key(LIVE_KEY) == "sk_live_…9876"
    assert mask_key("sk_test_ab") == "sk_test_…"
    assert mask_key(None) == "none"


def test_repr_never_shows_the_key() -> None:
    settings = Settings(secret_key=LIVE_KEY)
    assert LIVE_KEY not in repr(settings)
    assert "sk_live_…9876" in repr(settings)


def test_defaults_without_environment() -> None:
    settings = load_settings({})
    assert settings.mode is Mode.LOCAL
    assert settings.db_path == Path(".data/alma_ops.sqlite3")
    assert (settings.lookback_days, settings.auth_window_seconds) == (90, 3600)
    assert (settings.alma_min_cents, settings.alma_max_cents) == (5_000, 500_000)
    assert settings.return_url == "http://localhost:8501/return"
    assert LOCAL_SANDBOX_KEY.startswith("sk_test_")


def test_environment_wins_over_secrets() -> None:
    settings = load_settings(
        {"STRIPE_SECRET_KEY": "sk_test_env", "ALMA_OPS_LOOKBACK_DAYS": "30"},
        {"STRIPE_SECRET_KEY": "sk_test_secrets", "STRIPE_API_BASE": "http://127.0.0.1:1", "ALMA_OPS_DB": "x.db"},
    )
    assert settings.secret_key == "sk_test_env"
    assert settings.api_base == "http://127.0.0.1:1"
    assert settings.db_path == Path("x.db")
    assert settings.lookback_days == 30


def test_blank_values_count_as_unset() -> None:
    assert load_settings({"STRIPE_SECRET_KEY": "  ", "ALMA_OPS_PUBLIC_URL": ""}).mode is Mode.LOCAL


def test_public_url_trailing_slash() -> None:
    assert load_settings({"ALMA_OPS_PUBLIC_URL": "https://ops.example/"}).return_url == "https://ops.example/return"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALMA_OPS_REFRESH_SECONDS": "soon"}, "ALMA_OPS_REFRESH_SECONDS must be a whole number"),
        ({"ALMA_OPS_MIN_CENTS": "0"}, "must be positive"),
        ({"ALMA_OPS_MIN_CENTS": "600000"}, "not above ALMA_OPS_MAX_CENTS"),
        ({"ALMA_OPS_TIMEZONE": "Mars/Olympus"}, "IANA zone"),
    ],
)
def test_bad_values_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_stripe_debug_logging_is_refused_because_it_prints_client_secrets() -> None:
    with pytest.raises(SettingsError, match="STRIPE_LOG=debug"):
        load_settings({"STRIPE_LOG": "debug"})
    assert load_settings({"STRIPE_LOG": "info"}).mode is Mode.LOCAL
