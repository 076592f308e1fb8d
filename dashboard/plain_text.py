"""Text from Stripe, customers or a URL, made safe to draw: never Markdown, never HTML, never a bidi trick.

Streamlit draws st.markdown, st.caption, st.error, st.toast, … as Markdown (links, images, headings, colours,
autolinked bare URLs). Pages put outside text into that Markdown only through `literal`, which makes it an
inline code span: inside one, Markdown has no syntax at all (no emphasis, no links, no images, no autolinks,
no HTML, no Streamlit directives), so the text reads exactly as it was sent. `visible` is for plain-text
places (dataframe cells, st.text, st.json): there only the characters that reorder or hide text are a risk.
Streamlit-free and pure, so it is tested without a page.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

# Bidirectional controls (U+202E "right-to-left override" makes "gpj.exe" read "exe.jpg") and the other
# invisible marks that reorder text. Drawn as their code point, so a reader sees that they are there.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Line breaks of every kind (a Markdown block starts at a line break, and a code span cannot span blocks),
# and tabs: each becomes one space.
_LINE_BREAKS = re.compile(r"\r\n|[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_BACKTICK_RUNS = re.compile(r"`+")


def _shown_char(char: str) -> str:
    if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
        return f"[U+{ord(char):04X}]"
    return char


def visible(text: str) -> str:
    """The text on one line (tabs and line breaks become spaces), each control or bidi character replaced by
    its code point ("[U+202E]")."""
    one_line = _LINE_BREAKS.sub(" ", str(text))
    if one_line.isprintable() and not _BIDI_CONTROLS.intersection(one_line):
        return one_line
    return "".join(_shown_char(char) for char in one_line)


def literal(text: str) -> str:
    """Markdown that draws `text` as itself: an inline code span fenced with more backticks than any run
    inside it (so nothing can close it early), padded with a space where the text meets the fence."""
    shown = visible(text)
    if not shown.strip():
        return "—" if not shown else f"`{shown}`"
    fence = "`" * (max((len(run) for run in _BACKTICK_RUNS.findall(shown)), default=0) + 1)
    padded = f" {shown} " if shown[0] in "` " or shown[-1] in "` " else shown
    return f"{fence}{padded}{fence}"


def known_or_literal(value: str, known: Collection[str]) -> str:
    """`value` as it is when it is one of `known` (our own words: Stripe's enum values, say); else `literal`."""
    return value if value in known else literal(value)


def visible_json(value: Any) -> Any:
    """`value` (parsed JSON) with `visible` applied to every string, keys included, for st.json."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, Mapping):
        return {visible(str(key)): visible_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [visible_json(item) for item in value]
    return value


def web_link(url: str | None) -> str | None:
    """`url` when it is an http(s) address a link button may open; None for javascript:, data:, … ."""
    if url and re.match(r"https?://[^\s]", url, re.IGNORECASE) and visible(url) == url:
        return url
    return None
