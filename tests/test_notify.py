from __future__ import annotations

import logging

import pytest

from dashboard.alerts import Notification, check_notification
from dashboard.local_sandbox import free_port
from dashboard.notify import Notifier, mask_url, target_id
from dashboard.settings import SettingsError
from tests.json_receiver import JsonReceiver

PUBLIC = "https://ops.example.com/"
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"
EMAIL = "mailto://ops.bot:s3cretpass@gmail.com?to=oncall@example.com"
NOTE = Notification(
    rule="captures_due",
    kind="firing",
    title="Alma Ops — Captures due: 1 capture due within 24 h (€120.00)",
    body="Captures due: 1 capture due within 24 h (€120.00).\npi_123 · €120.00 · deadline …",
    page="expiry_watch",
)


@pytest.fixture
def notifiers():
    made: list[Notifier] = []

    def make(urls, public_url=PUBLIC) -> Notifier:
        notifier = Notifier(urls, public_url)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close()


def test_a_real_delivery_reaches_the_receiver_with_title_body_and_link(json_receiver: JsonReceiver, notifiers) -> None:
    delivery = notifiers([json_receiver.url("hook")]).send(NOTE)
    assert delivery.delivered and delivery.detail == "delivered to 1 target"
    [got] = json_receiver.received
    assert got.path == "/hook"
    assert got.title == NOTE.title
    assert got.message == NOTE.body + "\n\nOpen: https://ops.example.com/expiry_watch"
    assert got.payload["type"] == "warning"


def test_every_target_gets_it(notifiers) -> None:
    first, second = JsonReceiver(), JsonReceiver()
    try:
        delivery = notifiers([first.url(), second.url()]).send(check_notification(1_800_000_000, "UTC"))
        assert delivery.delivered and delivery.detail == "delivered to 2 targets"
        assert [len(first.received), len(second.received)] == [1, 1]
        assert first.received[0].payload["type"] == "info"
    finally:
        first.close()
        second.close()


def test_a_refusing_target_is_reported_not_raised_and_can_be_retried_alone(
    json_receiver: JsonReceiver, notifiers, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = JsonReceiver()
    refusing.status = 500
    try:
        notifier = notifiers([json_receiver.url(), refusing.url("secret-path-token")])
        with caplog.at_level(logging.DEBUG):
            delivery = notifier.send(NOTE)
        assert not delivery.delivered
        assert delivery.failed_targets == (target_id(refusing.url("secret-path-token")),)
        assert "1 of 2 accepted" in delivery.detail
        assert len(json_receiver.received) == 1
        assert "secret-path-token" not in caplog.text and "secret-path-token" not in delivery.detail
        refusing.status = 200
        retry = notifier.send(NOTE, only=delivery.failed_targets)
        assert retry.delivered
        assert len(json_receiver.received) == 1  # the target that had it does not get it twice
        assert len(refusing.received) == 1
    finally:
        refusing.close()


def test_an_unreachable_target_fails_without_raising(notifiers) -> None:
    delivery = notifiers([f"json://127.0.0.1:{free_port()}/nobody"]).send(NOTE)
    assert not delivery.delivered and len(delivery.failed_targets) == 1


def test_without_urls_nothing_is_delivered(notifiers) -> None:
    notifier = notifiers([])
    assert not notifier.configured
    delivery = notifier.send(NOTE)
    assert not delivery.delivered and "ALMA_OPS_ALERT_URLS" in delivery.detail


def test_an_unusable_url_is_refused_at_start_naming_the_variable_not_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(SettingsError, match="ALMA_OPS_ALERT_URLS") as refused:
        Notifier([SLACK, "slack://only-one-hunter2-token"], PUBLIC)
    assert "URL 2 of 2 (slack://…)" in str(refused.value)
    assert "hunter2" not in str(refused.value) and "hunter2" not in caplog.text
    assert not logging.getLogger("apprise").filters  # a refused notifier leaves no filter behind


def test_masked_urls_keep_the_service_and_hide_tokens_and_passwords() -> None:
    assert mask_url(SLACK) == "slack://T...2/A...D/T...Q/%...s/"
    masked_email = mask_url(EMAIL)
    assert "s3cretpass" not in masked_email and masked_email.startswith("mailtos://ops.bot:****@gmail.com")
    assert mask_url("json://user:pw12345@127.0.0.1:8080/hook?token=abc") == "json://user:****@127.0.0.1:8080/h...k"
    assert mask_url("nonsense://abc:def@x") == "nonsense://…"


def test_logs_of_a_slack_delivery_never_show_its_tokens(notifiers, caplog: pytest.LogCaptureFixture) -> None:
    """A Slack target pointed nowhere (no network here): apprise logs its attempt at debug level."""
    with caplog.at_level(logging.DEBUG):
        notifier = notifiers([SLACK])
        assert notifier.targets == ((target_id(SLACK), "slack://T...2/A...D/T...Q/%...s/"),)
    for secret in ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"):
        assert secret not in caplog.text
