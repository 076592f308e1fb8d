from __future__ import annotations

import pytest

from dashboard.alerts import (
    MAX_DETAIL_LINES,
    AlertFigures,
    DueCapture,
    FailedRefund,
    FailureFigures,
    RuleResult,
    RuleState,
    captures_due,
    check_notification,
    data_stale,
    evaluate,
    failure_spike,
    record_delivery,
    refund_failed,
    step,
)
from dashboard.settings import (
    ALERT_KNOBS,
    AlertSettings,
    SettingsError,
    load_alert_settings,
    load_settings,
    split_urls,
)

NOW = 1_800_000_000
HOUR = 3600
TZ = "Europe/Paris"
DEFAULTS = AlertSettings()


# -- settings ---------------------------------------------------------------------------------------------------


def test_defaults_are_the_issues() -> None:
    settings = load_alert_settings({})
    assert settings == AlertSettings()
    assert (settings.failure_window_seconds, settings.failure_min_intents, settings.failure_rate_percent) == (
        3600,
        5,
        50,
    )
    assert (settings.captures_due_seconds, settings.stale_seconds, settings.cooldown_seconds) == (86400, 600, 21600)
    assert settings.urls == ()


def test_environment_wins_over_the_alerts_section() -> None:
    secrets = {"alerts": {"cooldown_hours": 2, "failure_min_intents": 8, "urls": ["json://127.0.0.1:1/a"]}}
    settings = load_alert_settings({"ALMA_OPS_ALERT_COOLDOWN_HOURS": "3"}, secrets)
    assert settings.cooldown_seconds == 3 * HOUR
    assert settings.failure_min_intents == 8
    assert settings.urls == ("json://127.0.0.1:1/a",)


@pytest.mark.parametrize("knob", ALERT_KNOBS, ids=lambda knob: knob.key)
def test_out_of_range_values_are_refused_naming_the_variable(knob) -> None:
    for bad in (str(knob.low - 1), str(knob.high + 1), "abc", "1.5"):
        with pytest.raises(SettingsError, match=knob.env_name):
            load_alert_settings({knob.env_name: bad})


def test_range_edges_are_accepted() -> None:
    for knob in ALERT_KNOBS:
        for value in (knob.low, knob.high):
            settings = load_alert_settings({knob.env_name: str(value)})
            assert getattr(settings, knob.field) == value * knob.unit_seconds


def test_toml_float_or_bool_refused() -> None:
    with pytest.raises(SettingsError, match="ALMA_OPS_ALERT_COOLDOWN_HOURS"):
        load_alert_settings({}, {"alerts": {"cooldown_hours": 6.5}})
    with pytest.raises(SettingsError, match="ALMA_OPS_ALERT_STALE_MINUTES"):
        load_alert_settings({}, {"alerts": {"stale_minutes": True}})


def test_urls_split_on_whitespace_and_on_commas_between_urls_only() -> None:
    text = "slack://a/b/c, mailto://u:p@example.com?to=x@example.com,y@example.com\njson://127.0.0.1:9/p"
    assert split_urls(text) == (
        "slack://a/b/c",
        "mailto://u:p@example.com?to=x@example.com,y@example.com",
        "json://127.0.0.1:9/p",
    )
    assert load_alert_settings({"ALMA_OPS_ALERT_URLS": text}).urls == split_urls(text)


def test_load_settings_checks_the_alerts_at_start(json_receiver) -> None:
    settings = load_settings({"ALMA_OPS_ALERT_URLS": json_receiver.url(), "ALMA_OPS_ALERT_STALE_MINUTES": "5"})
    assert settings.alerts.urls == (json_receiver.url(),) and settings.alerts.stale_seconds == 300
    with pytest.raises(SettingsError, match="ALMA_OPS_ALERT_URLS: URL 1 of 1"):
        load_settings({"ALMA_OPS_ALERT_URLS": "notaservice://hunter2"})


def test_repr_never_shows_urls() -> None:
    settings = load_alert_settings({"ALMA_OPS_ALERT_URLS": "mailto://user:hunter2@example.com"})
    assert "hunter2" not in repr(settings)


# -- rules ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "declined", "expired", "firing"),
    [
        (10, 8, 0, True),
        (10, 3, 2, True),  # exactly 50%
        (10, 4, 0, False),
        (5, 3, 0, True),  # exactly the minimum count
        (4, 4, 0, False),  # all failed, but too few to call it a spike
        (0, 0, 0, False),
    ],
)
def test_failure_spike(sent: int, declined: int, expired: int, firing: bool) -> None:
    result = failure_spike(FailureFigures(sent, declined, expired), DEFAULTS)
    assert result.firing is firing
    assert result.count == declined + expired
    assert f"{declined + expired} of {sent} failed" in result.value


def test_failure_spike_thresholds_come_from_settings() -> None:
    strict = AlertSettings(failure_min_intents=20, failure_rate_percent=90)
    assert not failure_spike(FailureFigures(10, 10, 0), strict).firing
    assert not failure_spike(FailureFigures(20, 17, 0), strict).firing
    assert failure_spike(FailureFigures(20, 16, 2), strict).firing
    assert "at least 20 intents" in failure_spike(FailureFigures(0, 0, 0), strict).threshold


def test_captures_due_lists_those_within_the_horizon_soonest_first() -> None:
    due = [
        DueCapture("pi_later", 20_000, NOW + 20 * HOUR),
        DueCapture("pi_soon", 45_050, NOW + 2 * HOUR + 30 * 60),
        DueCapture("pi_far", 9_900, NOW + 30 * HOUR),
    ]
    result = captures_due(due, NOW, DEFAULTS, TZ)
    assert result.firing and result.count == 2
    assert result.value == "2 captures due within 24 h (€650.50)"
    assert result.details[0].startswith("pi_soon · €450.50 · deadline ")
    assert result.details[0].endswith("(in 2 h 30 min)")
    assert result.details[1].startswith("pi_later · €200.00")
    assert not any("pi_far" in line for line in result.details)


def test_captures_due_quiet_without_any_and_says_when_a_deadline_passed() -> None:
    assert not captures_due([], NOW, DEFAULTS, TZ).firing
    passed = captures_due([DueCapture("pi_late", 100, NOW - 5)], NOW, DEFAULTS, TZ)
    assert passed.firing and passed.details[0].endswith("(passed)")


def test_captures_due_caps_its_lines() -> None:
    due = [DueCapture(f"pi_{i:03d}", 5000, NOW + HOUR + i) for i in range(MAX_DETAIL_LINES + 5)]
    result = captures_due(due, NOW, DEFAULTS, TZ)
    assert result.count == MAX_DETAIL_LINES + 5
    assert len(result.details) == MAX_DETAIL_LINES + 1
    assert result.details[-1] == "…and 5 more"


def test_refund_failed_fires_for_recent_failures_only() -> None:
    refunds = [
        FailedRefund("re_new", "pi_1", 12_000, NOW - HOUR, "expired_or_canceled_card"),
        FailedRefund("re_old", "pi_2", 5_000, NOW - 25 * HOUR),
    ]
    result = refund_failed(refunds, NOW, DEFAULTS, TZ)
    assert result.firing and result.count == 1
    assert result.details[0].startswith("re_new of pi_1 · €120.00 · failed ")
    assert result.details[0].endswith("expired_or_canceled_card")
    assert not refund_failed(refunds[1:], NOW, DEFAULTS, TZ).firing


def test_data_stale() -> None:
    assert not data_stale(NOW - 599, NOW, DEFAULTS, TZ).firing
    stale = data_stale(NOW - 600, NOW, DEFAULTS, TZ)
    assert stale.firing and stale.count == 10
    assert "10 min ago" in stale.value
    never = data_stale(None, NOW, DEFAULTS, TZ)
    assert never.firing and never.value == "no sync has succeeded yet"


def test_evaluate_gives_every_rule_in_order() -> None:
    figures = AlertFigures(FailureFigures(0, 0, 0), (), (), NOW - 30)
    results = evaluate(figures, NOW, DEFAULTS, TZ)
    assert [r.rule for r in results] == ["failure_spike", "captures_due", "refund_failed", "data_stale"]
    assert not any(r.firing for r in results)


# -- state machine ----------------------------------------------------------------------------------------------

COOLDOWN = 6 * HOUR
FIRING = RuleResult("captures_due", True, 1, "1 capture due within 24 h (€10.00)", "t", ("pi_1 · €10.00",))
CLEAR = RuleResult("captures_due", False, 0, "0 captures due within 24 h (€0.00)", "t")


def delivered(state: RuleState, notification, now: int) -> RuleState:
    return record_delivery(state, notification.kind, True, now)


def test_ok_stays_quiet_and_learns_since() -> None:
    state, note = step(RuleState(), CLEAR, NOW, COOLDOWN, TZ)
    assert note is None and state == RuleState("ok", NOW)
    again, note = step(state, CLEAR, NOW + 60, COOLDOWN, TZ)
    assert note is None and again == state


def test_firing_sends_once_then_quiet_until_cooldown_then_reminds() -> None:
    state, note = step(RuleState("ok", NOW - HOUR), FIRING, NOW, COOLDOWN, TZ)
    assert note is not None and note.kind == "firing" and note.page == "expiry_watch"
    assert "pi_1 · €10.00" in note.body
    state = delivered(state, note, NOW)
    assert state == RuleState("firing", NOW, last_sent_at=NOW)
    for later in (NOW + 60, NOW + COOLDOWN - 1):
        state, note = step(state, FIRING, later, COOLDOWN, TZ)
        assert note is None
    state, note = step(state, FIRING, NOW + COOLDOWN, COOLDOWN, TZ)
    assert note is not None and note.kind == "reminder" and note.title.startswith("Alma Ops — Still firing")
    state = delivered(state, note, NOW + COOLDOWN)
    state, note = step(state, FIRING, NOW + COOLDOWN + 60, COOLDOWN, TZ)
    assert note is None and state.since == NOW


def test_cleared_sends_one_resolved() -> None:
    state = RuleState("firing", NOW, last_sent_at=NOW)
    state, note = step(state, CLEAR, NOW + 600, COOLDOWN, TZ)
    assert note is not None and note.kind == "resolved" and "Resolved" in note.title
    assert "pi_1" not in note.body
    state = delivered(state, note, NOW + 600)
    assert state == RuleState("ok", NOW + 600, last_sent_at=NOW)
    state, note = step(state, CLEAR, NOW + 660, COOLDOWN, TZ)
    assert note is None


def test_failed_delivery_is_retried_on_the_next_evaluation_only_until_it_goes_out() -> None:
    state, note = step(RuleState("ok", NOW), FIRING, NOW, COOLDOWN, TZ)
    state = record_delivery(state, "firing", False, NOW)
    assert state.pending == "firing" and state.last_sent_at is None
    state, retry = step(state, FIRING, NOW + 15, COOLDOWN, TZ)
    assert retry is not None and retry.kind == "firing"
    state = delivered(state, retry, NOW + 15)
    state, note = step(state, FIRING, NOW + 30, COOLDOWN, TZ)
    assert note is None
    assert state.since == NOW and state.last_sent_at == NOW + 15  # cooldown counts from the delivery


def test_failed_resolved_is_retried_and_a_new_firing_replaces_it() -> None:
    state, note = step(RuleState("firing", NOW, NOW), CLEAR, NOW + 60, COOLDOWN, TZ)
    state = record_delivery(state, "resolved", False, NOW + 60)
    state, retry = step(state, CLEAR, NOW + 75, COOLDOWN, TZ)
    assert retry is not None and retry.kind == "resolved"
    state, note = step(state, FIRING, NOW + 90, COOLDOWN, TZ)
    assert note is not None and note.kind == "firing" and state == RuleState("firing", NOW + 90, NOW, "firing")


def test_a_stale_delivery_report_changes_nothing() -> None:
    state = RuleState("ok", NOW, NOW - 60, pending="resolved")
    assert record_delivery(state, "firing", True, NOW) == state


def test_check_notification_links_the_alerts_page() -> None:
    note = check_notification(NOW, TZ)
    assert note.kind == "test" and note.page == "alerts" and note.rule is None
