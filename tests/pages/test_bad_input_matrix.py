"""Every dashboard field with its bad values (issue 8): each gets a clear message right under the field, and
neither the sandbox nor the store changes. And outside text (Stripe's, a customer's, a URL's) is drawn as
text on every page that shows it: outside code spans, none of it is left to Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from dashboard.domain import TEST_LAB_TAG, AlmaIntent
from dashboard.gateway import StripeGateway
from dashboard.store import IntentStore
from tests.conftest import SandboxServer
from tests.pages.conftest import create_intent, open_app, press_hosted_button, sandbox_intents

LAB = "app_pages/lab.py"
INTENTS = "app_pages/intents.py"


def in_order(node: Any) -> Iterator[Any]:
    """The page's elements (not their containers), in the order they are drawn."""
    for key in sorted(getattr(node, "children", {})):
        child = node.children[key]
        if isinstance(child, Block):
            yield from in_order(child)
        else:
            yield child


def message_under(at: AppTest, field_key: str) -> str | None:
    """The error drawn right after the widget `field_key`, before any other element; None if there is none."""
    nodes = list(in_order(at.main))
    position = next(i for i, n in enumerate(nodes) if getattr(n, "key", None) == field_key)
    following = nodes[position + 1] if position + 1 < len(nodes) else None
    return following.value if following is not None and following.type == "error" else None


def snapshot(gateway: StripeGateway, store: IntentStore) -> tuple[list[AlmaIntent], list[AlmaIntent]]:
    return sandbox_intents(gateway), store.all_intents()


# --- Test lab's create form -----------------------------------------------------------------------------

FIFTY_KEYS = "\n".join(f"k{n}=v" for n in range(50))
LAB_FORM_CASES = [
    # (field key, amount, description, metadata, message under the field)
    ("lab_amount", "50,000", "", "", "`50,000` could be €50,000.00 or €50.00"),
    ("lab_amount", "50.000", "", "", "`50.000` could be €50,000.00 or €50.00"),
    ("lab_amount", "1,000", "", "", "`1,000` could be €1,000.00 or €1.00"),
    ("lab_amount", "٥٠٠٠", "", "", "`٥٠٠٠` is not a number."),
    ("lab_amount", "1e3", "", "", "`1e3` is not a number."),
    ("lab_amount", "1000000000000000000000000000000", "", "", "Alma accepts €50.00 to €5,000.00."),
    ("lab_amount", "10 00", "", "", "thousands are grouped by three digits"),
    ("lab_amount", "-60", "", "", "The amount must be greater than zero."),
    ("lab_amount", "![t](http://host/track.png)", "", "", "`![t](http://host/track.png)` is not a number."),
    ("lab_description", "120", "d" * 22_000, "", "At most 5,000 characters (Stripe's limit); this has 22,000."),
    ("lab_metadata", "120", "", FIFTY_KEYS, "At most 49 keys (Stripe allows 50; the others are this form's own)"),
    ("lab_metadata", "120", "", "alma_ops_source=mine", "Line 1: `alma_ops_source` is reserved"),
    ("lab_metadata", "120", "", "k" * 41 + "=v", "Line 1: keys are 1–40 characters"),
    ("lab_metadata", "120", "", "k=" + "v" * 501, "Line 1: values are at most 500 characters."),
    ("lab_metadata", "120", "", "k=1\nk=2", "Line 2: the key `k` appears twice."),
]


@pytest.mark.parametrize(("field", "amount", "description", "metadata", "message"), LAB_FORM_CASES)
def test_lab_form_refuses_at_the_field_and_creates_nothing(
    gateway: StripeGateway, store: IntentStore, field: str, amount: str, description: str, metadata: str, message: str
) -> None:
    at = open_app(LAB)
    before = snapshot(gateway, store)
    at.text_input(key="lab_amount").input(amount)
    at.text_input(key="lab_description").input(description)
    at.text_area(key="lab_metadata").input(metadata)
    next(b for b in at.button if b.label == "Create test intent").click()
    at.run()

    assert not at.exception
    shown = message_under(at, field)
    assert shown is not None and message in shown, [e.value for e in at.error]
    assert len(at.error) == 1 and not at.success
    assert snapshot(gateway, store) == before == ([], [])


# --- Intents filters ------------------------------------------------------------------------------------


@pytest.fixture
def three_intents(app_env: SandboxServer, gateway: StripeGateway) -> list[str]:
    return [create_intent(gateway, cents).intent.id for cents in (6_000, 100_000, 250_000)]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("intents_min", "1,000", "`1,000` could be €1,000.00 or €1.00"),
        ("intents_max", "1,000", "`1,000` could be €1,000.00 or €1.00"),
        ("intents_max", "50.000", "`50.000` could be €50,000.00 or €50.00"),
        ("intents_min", "lots", "`lots` is not a number."),
        ("intents_max", "1e3", "`1e3` is not a number."),
        ("intents_min", "٥٠", "`٥٠` is not a number."),
        ("intents_max", "99999999999", "Stripe amounts are €0.01 to €999,999.99; got €99,999,999,999.00."),
        ("intents_min", "0", "The amount must be greater than zero."),
    ],
)
def test_intents_amount_filter_refuses_at_the_field_and_filters_nothing_away(
    three_intents: list[str], gateway: StripeGateway, store: IntentStore, field: str, value: str, message: str
) -> None:
    """Was: Min '1,000' silently €1.00, Max '1,000' silently 0 rows."""
    at = open_app(INTENTS)
    before = snapshot(gateway, store)
    at.text_input(key=field).input(value).run()

    assert message_under(at, field) is not None and message in (message_under(at, field) or "")
    assert sorted(at.dataframe[0].value["id"]) == sorted(three_intents)
    assert snapshot(gateway, store) == before


def test_min_above_max_is_said_at_max_and_does_not_empty_the_table(
    three_intents: list[str], gateway: StripeGateway, store: IntentStore
) -> None:
    at = open_app(INTENTS)
    at.text_input(key="intents_min").input("2000")
    at.text_input(key="intents_max").input("100").run()

    assert message_under(at, "intents_max") == (
        "Max €100.00 is below Min €2,000.00: no amount is in that range. "
        "The amount filter is off until Max is at least Min."
    )
    assert sorted(at.dataframe[0].value["id"]) == sorted(three_intents)


# --- capture: the amount field and its confirmation ---------------------------------------------------


def held_intent(gateway: StripeGateway, cents: int) -> tuple[AppTest, str]:
    created = create_intent(gateway, cents, capture_method="manual", metadata=(TEST_LAB_TAG,))
    press_hosted_button(created.redirect_url or "", "Authorize test payment")
    return open_app(LAB), created.intent.id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,000", "`1,000` could be €1,000.00 or €1.00"),  # was: captured €1.00, released the rest for good
        ("250", "Capturable: €0.01 to €200.00; got €250.00."),
        ("0", "The amount must be greater than zero."),
        ("20.000", "`20.000` could be €20,000.00 or €20.00"),
    ],
)
def test_a_bad_capture_amount_captures_nothing(
    app_env: SandboxServer, gateway: StripeGateway, store: IntentStore, value: str, message: str
) -> None:
    at, intent_id = held_intent(gateway, 20_000)
    before = snapshot(gateway, store)
    at.text_input(key=f"capture_amount:{intent_id}").input(value)
    next(b for b in at.button if b.label == "Capture").click()
    at.run()

    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.label == "Confirm capture"]
    assert snapshot(gateway, store) == before
    assert gateway.retrieve_intent(intent_id).status == "requires_capture"


def test_a_capture_is_sent_only_once_confirmed_in_words_and_back_sends_nothing(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    at, intent_id = held_intent(gateway, 120_000)
    at.text_input(key=f"capture_amount:{intent_id}").input("1 000,00")
    next(b for b in at.button if b.label == "Capture").click()
    at.run()
    assert [w.value for w in at.warning] == [
        "Capture €1,000.00 of €1,200.00; the remaining €200.00 is released for good."
    ]
    next(b for b in at.button if b.label == "Back").click()
    at.run()
    assert not at.warning and gateway.retrieve_intent(intent_id).status == "requires_capture"

    next(b for b in at.button if b.label == "Capture").click()
    at.run()
    next(b for b in at.button if b.label == "Confirm capture").click()
    at.run()
    assert gateway.retrieve_intent(intent_id).amount_received == 100_000


def test_canceling_an_authorised_intent_is_confirmed_in_words(app_env: SandboxServer, gateway: StripeGateway) -> None:
    at, intent_id = held_intent(gateway, 9_000)
    next(b for b in at.button if b.label == "Cancel").click()
    at.run()
    assert gateway.retrieve_intent(intent_id).status == "requires_capture"
    assert at.warning[0].value.startswith("Cancel and release the €90.00 held")

    next(b for b in at.button if b.label == "Confirm cancel").click()
    at.run()
    assert gateway.retrieve_intent(intent_id).status == "canceled"


# --- Test lab's own intents ---------------------------------------------------------------------------


def test_only_the_exact_tag_makes_a_test_intent(app_env: SandboxServer, gateway: StripeGateway) -> None:
    """Was: any intent whose description contained the tag's text was listed, with Cancel."""
    mimic = create_intent(gateway, 6_000, description="alma_ops_source=test_lab").intent
    lookalike = create_intent(gateway, 6_000, metadata=(("note", "x; alma_ops_source=test_lab"),)).intent
    ours = create_intent(gateway, 7_000, metadata=(TEST_LAB_TAG,)).intent
    at = open_app(LAB)

    listed = " ".join(m.value for m in at.markdown)
    assert ours.id in listed and mimic.id not in listed and lookalike.id not in listed
    assert len([b for b in at.button if b.label == "Cancel"]) == 1


# --- outside text is text -----------------------------------------------------------------------------

HOSTILE = "![t](http://host/track.png) [Sign in](http://evil.example) # H :red[c] <b>b</b> \u202egpj.exe"
CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def outside_code_spans(markdown: str) -> str:
    return CODE_SPAN.sub("", markdown)


def drawn_markdown(at: AppTest) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "subheader", "toast")
    return [n.value for n in in_order(at.main) if getattr(n, "type", None) in kinds and isinstance(n.value, str)]


def assert_drawn_as_text(at: AppTest) -> None:
    """No piece of the payload reaches Markdown outside a code span, and no bidi override is drawn at all."""
    for markdown in drawn_markdown(at):
        rest = outside_code_spans(markdown)
        for piece in ("](", "http", ":red[", "<b>", "# H", "\u202e"):
            assert piece not in rest, (piece, markdown)
        assert "\u202e" not in markdown


def test_intent_detail_draws_description_metadata_and_error_as_text(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    created = create_intent(gateway, 9_900, description=HOSTILE, metadata=(("note", HOSTILE),))
    press_hosted_button(created.redirect_url or "", "Fail test payment")
    at = open_app(INTENTS, intent=created.intent.id)

    details = " ".join(drawn_markdown(at))
    assert "[U+202E]gpj.exe" in details and "![t](http://host/track.png)" in details  # shown, as text
    assert_drawn_as_text(at)
    table = at.dataframe[0].value
    assert "\u202e" not in table["description"].iloc[0] and "[U+202E]" in table["description"].iloc[0]


def test_test_lab_list_draws_the_description_as_text(app_env: SandboxServer, gateway: StripeGateway) -> None:
    create_intent(gateway, 7_000, description=HOSTILE, metadata=(TEST_LAB_TAG,))
    at = open_app(LAB)

    assert any("[U+202E]gpj.exe" in c.value for c in at.caption)
    assert_drawn_as_text(at)


def test_expiry_watch_draws_a_waiting_intent_s_description_as_text(
    app_env: SandboxServer, gateway: StripeGateway
) -> None:
    create_intent(gateway, 7_000, description=HOSTILE)
    at = open_app("app_pages/expiry_watch.py")

    assert any("[U+202E]gpj.exe" in m.value for m in at.markdown)
    assert_drawn_as_text(at)


@pytest.mark.parametrize(
    "payload",
    [
        "x` **Your session expired.** [Sign in again](http://evil.example/login) `",
        "![t](http://host/track.png)",
        "``` # H\n[x](http://evil.example)",
        "pi_\u202e321",
    ],
)
def test_an_intent_parameter_is_quoted_as_text_in_the_warning(app_env: SandboxServer, payload: str) -> None:
    """Was: the parameter broke out of the backticks of "No Alma intent `…`" and drew a phishing link."""
    at = open_app(INTENTS, intent=payload)

    [warning] = at.warning
    assert warning.value.startswith("No Alma intent ")
    assert_drawn_as_text(at)


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "allowed"),
    [
        ("ALMA_OPS_REFRESH_SECONDS", "0", "from 2 to 3,600"),
        ("ALMA_OPS_LOOKBACK_DAYS", "-1", "from 1 to 3,650"),
        ("ALMA_OPS_AUTH_WINDOW_SECONDS", "0", "from 1 to 86,400"),
        ("ALMA_OPS_DEMO_INTENTS", "-5", "from 0 to 100,000"),
        ("ALMA_OPS_SANDBOX_PORT", "99999", "from 0 to 65,535 (0: any free port)"),
        ("ALMA_OPS_MAX_CENTS", "1000000000", "from 1 to 99,999,999"),
    ],
)
def test_a_setting_out_of_range_stops_the_app_at_start_naming_it(
    app_env: SandboxServer, monkeypatch: pytest.MonkeyPatch, name: str, raw: str, allowed: str
) -> None:
    monkeypatch.setenv(name, raw)
    before = app_env.stats()
    at = open_app()

    assert [e.value for e in at.error] == [
        f"Configuration error: {name} must be a whole number {allowed}, got '{raw}'."
    ]
    assert not at.exception and not at.dataframe and not at.metric
    assert app_env.stats() == before  # nothing asked of the sandbox: no sync started
