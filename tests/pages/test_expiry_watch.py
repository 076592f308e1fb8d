"""Expiry watch against the sandbox: waiting intents soonest first with their time left, and an intent whose
hour ran out moves to Recently expired (declines listed apart). The self-refresh timer itself is exercised in
the browser tests; here "Sync now" stands in for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

from dashboard.gateway import StripeGateway
from tests.conftest import SandboxServer
from tests.pages.conftest import create_intent, open_app, press_hosted_button

PAGE = "app_pages/expiry_watch.py"


def _in_order(node: Any) -> Iterator[Any]:
    for key in sorted(getattr(node, "children", {})):
        child = node.children[key]
        yield child
        yield from _in_order(child)


def sections(at: AppTest) -> dict[str, list[Any]]:
    """Elements grouped under the subheader that precedes them."""
    grouped: dict[str, list[Any]] = {}
    current = ""
    for node in _in_order(at.main):
        if getattr(node, "type", None) == "subheader":
            current = node.value
            grouped[current] = []
        elif current and getattr(node, "type", None) in ("markdown", "progress", "dataframe", "caption"):
            grouped[current].append(node)
    return grouped


def section(at: AppTest, prefix: str) -> list[Any]:
    return next(nodes for title, nodes in sections(at).items() if title.startswith(prefix))


def table(at: AppTest, prefix: str) -> pd.DataFrame:
    frames = [n.value for n in section(at, prefix) if n.type == "dataframe"]
    return frames[0] if frames else pd.DataFrame({"id": [], "status": []})


def waiting_ids(at: AppTest) -> list[str]:
    return [n.value.split("`")[1] for n in section(at, "Awaiting customer") if n.type == "markdown"]


def seconds_in(text: str) -> int:
    """'39 min 59 s left …' / '1 h 00 min left …' -> seconds (minute precision for the hour form)."""
    found = re.match(r"(?:(\d+) h )?(?:(\d+) min)?(?: ?(\d+) s)? left", text)
    assert found, text
    hours, minutes, secs = (int(g or 0) for g in found.groups())
    return hours * 3600 + minutes * 60 + secs


def sync_now(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Sync now").click()
    return at.run()


def test_waiting_intents_soonest_first_with_time_left(app_env: SandboxServer, gateway: StripeGateway) -> None:
    first = create_intent(gateway, 5_000).intent
    app_env.advance(20 * 60)
    second = create_intent(gateway, 6_000).intent

    at = open_app(PAGE)

    assert waiting_ids(at) == [first.id, second.id]
    assert [s.value for s in at.subheader][0] == "Awaiting customer (2)"
    bars = [n for n in section(at, "Awaiting customer") if n.type == "progress"]
    assert [b.proto.value for b in bars] == [33, 0]  # percent of the hour gone
    # The sandbox clock runs with wall time: compare the two countdowns, not their absolute values.
    left = [seconds_in(b.proto.text) for b in bars]
    assert 3600 - 30 <= left[1] <= 3600 and abs((left[1] - left[0]) - 20 * 60) <= 60


def test_an_expired_intent_moves_to_recently_expired(app_env: SandboxServer, gateway: StripeGateway) -> None:
    intent = create_intent(gateway, 5_500).intent
    at = open_app(PAGE)
    assert waiting_ids(at) == [intent.id]
    assert table(at, "Recently expired").empty

    app_env.advance(61 * 60)
    sync_now(at)

    assert waiting_ids(at) == []
    expired = table(at, "Recently expired")
    assert list(expired["id"]) == [intent.id]
    assert list(expired["outcome"]) == ["Expired"]
    assert list(expired["waited"]) == ["1 h 00 min"]
    assert table(at, "Declined").empty


def test_declines_are_listed_apart_from_expiries(app_env: SandboxServer, gateway: StripeGateway) -> None:
    declined = create_intent(gateway, 7_000)
    press_hosted_button(declined.redirect_url or "", "Fail test payment")

    at = open_app(PAGE)

    assert list(table(at, "Declined")["id"]) == [declined.intent.id]
    assert table(at, "Recently expired").empty
    assert waiting_ids(at) == []


def test_lookback_hides_older_expiries(app_env: SandboxServer, gateway: StripeGateway) -> None:
    intent = create_intent(gateway, 5_000).intent
    app_env.advance(61 * 60)
    at = open_app(PAGE)
    assert list(table(at, "Recently expired")["id"]) == [intent.id]

    app_env.advance(2 * 3600)
    at.button_group(key="expiry_lookback").set_value("1 h").run()

    assert table(at, "Recently expired").empty


def test_authorised_intents_wait_for_capture_with_their_deadline(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    held = create_intent(gateway, 21_000, capture_method="manual")
    press_hosted_button(held.redirect_url or "", "Authorize test payment")

    at = open_app(PAGE)

    waiting = table(at, "Awaiting capture")
    assert list(waiting["id"]) == [held.intent.id]
    assert list(waiting["capturable"]) == ["€210.00"]
    assert re.match(r"(7 d 0|6 d 23) h", waiting["left"][0]), waiting["left"][0]
    assert [s.value for s in at.subheader][1] == "Awaiting capture (1)"


def countdown_urgencies(at: AppTest) -> dict[str, str]:
    """Intent id -> the urgency of its countdown card (the card's key, which colours its bar)."""
    found = {}
    for node in _in_order(at.main):
        key = getattr(getattr(node, "proto", None), "id", "")
        if match := re.search(r"countdown-(calm|soon|ending|unknown)-(pi_\w+)$", key):
            found[match.group(2)] = match.group(1)
    return found


def test_countdown_bars_change_colour_as_the_hour_runs_out(app_env: SandboxServer, gateway: StripeGateway) -> None:
    first = create_intent(gateway, 5_000).intent
    app_env.advance(35 * 60)
    second = create_intent(gateway, 6_000).intent
    at = open_app(PAGE)
    assert countdown_urgencies(at) == {first.id: "soon", second.id: "calm"}
    assert any("st-key-countdown-ending-" in node.proto.body for node in at.get("html"))  # the colours' CSS

    app_env.advance(17 * 60)  # 52 and 17 minutes gone
    sync_now(at)
    assert countdown_urgencies(at) == {first.id: "ending", second.id: "calm"}


def test_captures_due_within_a_day_stand_out_first(app_env: SandboxServer, gateway: StripeGateway) -> None:
    early = create_intent(gateway, 21_000, capture_method="manual")
    press_hosted_button(early.redirect_url or "", "Authorize test payment")
    app_env.advance(2 * 86_400)
    late = create_intent(gateway, 9_000, capture_method="manual")
    press_hosted_button(late.redirect_url or "", "Authorize test payment")
    at = open_app(PAGE)
    assert not [w for w in at.warning if "captured within" in w.value]
    assert not any(str(left).startswith("⚠") for left in table(at, "Awaiting capture")["left"])

    app_env.advance(4 * 86_400 + 13 * 3600)  # the first is 11 h from its deadline, the second 2 d 11 h
    sync_now(at)

    held = table(at, "Awaiting capture")
    assert list(held["id"]) == [early.intent.id, late.intent.id]
    assert held["left"][0].startswith("⚠ 10 h 5") or held["left"][0].startswith("⚠ 11 h 0"), held["left"][0]
    assert not held["left"][1].startswith("⚠")
    assert [w.value for w in at.warning if "captured within" in w.value] == [
        "1 authorised payment must be captured within 24 h, or the authorisation is released and the money is lost."
    ]
