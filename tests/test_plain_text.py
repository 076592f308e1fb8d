"""Outside text drawn as text: `literal` leaves Markdown nothing to interpret, `visible` shows bidi tricks."""

from __future__ import annotations

import pytest

from dashboard.plain_text import known_or_literal, literal, visible, visible_json, web_link

PAYLOADS = [
    "![t](http://host/track.png)",
    "[Sign in again](http://evil.example/login)",
    "# Heading",
    ":red[coloured] :red-badge[badge]",
    "<img src=x onerror=alert(1)>",
    "http://bare.example/autolink www.example.com",
    "**bold** _it_ $x^2$",
    "x` **Your session expired.** [Sign in again](http://evil.example) `",
    "``double`` and ```triple```",
]


@pytest.mark.parametrize("text", PAYLOADS)
def test_literal_is_one_code_span_that_nothing_inside_can_close(text: str) -> None:
    """A code span opened by n backticks ends only at a run of exactly n: the fence is longer than any run."""
    shown = literal(text)
    fence = shown[: len(shown) - len(shown.lstrip("`"))]
    inner = shown[len(fence) : -len(fence)]
    assert shown.endswith(fence) and fence not in inner
    assert inner.strip(" ") == text or inner == text


def test_the_url_parameter_of_the_issue_stays_inside_its_quote() -> None:
    assert literal("x` **Your session expired.** `") == "`` x` **Your session expired.** ` ``"
    assert literal("pi_123") == "`pi_123`"  # plain ids read as before


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("abc\u202egpj.exe", "abc[U+202E]gpj.exe"),  # right-to-left override
        ("a\u2066b\u2069c\u200fd", "a[U+2066]b[U+2069]c[U+200F]d"),
        ("line one\nline two\r\n# three", "line one line two # three"),
        ("tab\there", "tab here"),
        ("bell\x07", "bell[U+0007]"),
        ("café 1\u202f000 €", "café 1\u202f000 €"),  # ordinary text untouched
    ],
)
def test_visible_shows_what_would_reorder_or_hide_text(text: str, shown: str) -> None:
    assert visible(text) == shown
    assert shown in literal(text)


def test_a_multiline_payload_cannot_start_a_markdown_block() -> None:
    assert "\n" not in literal("ok\n# Heading\n![i](http://h/i.png)")


def test_empty_text_is_a_dash() -> None:
    assert literal("") == "—"


def test_visible_json_walks_keys_and_values() -> None:
    raw = {"description": "a\u202eb", "metadata": {"k\u202e": ["x\ny", 5, None]}}
    assert visible_json(raw) == {"description": "a[U+202E]b", "metadata": {"k[U+202E]": ["x y", 5, None]}}


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://hooks.stripe.com/redirect/x", "https://hooks.stripe.com/redirect/x"),
        ("http://127.0.0.1:12111/alma/pay/x", "http://127.0.0.1:12111/alma/pay/x"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("https://a\u202eb", None),
        ("", None),
        (None, None),
    ],
)
def test_only_web_addresses_become_link_buttons(url: str | None, link: str | None) -> None:
    assert web_link(url) == link


def test_our_own_words_stay_plain_and_anything_else_is_quoted() -> None:
    assert known_or_literal("manual", ("automatic", "manual")) == "manual"
    assert known_or_literal("[x](http://e)", ("automatic", "manual")) == "`[x](http://e)`"
