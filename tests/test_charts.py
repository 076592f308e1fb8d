"""Chart specs: status coloured by the one fixed scale, and the data shipped equal to the analytics."""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import pandas as pd
import pytest

from dashboard import analytics, charts
from dashboard.domain import STATUSES
from tests.test_analytics import alma_intent, frame_of, mixed_intents, paris

COLOURS = [charts.STATUS_COLOURS[s].chart for s in STATUSES]


@pytest.fixture
def mixed() -> pd.DataFrame:
    return frame_of(*mixed_intents())


def chart_data(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["datasets"][spec["data"]["name"]]


def all_charts(frame: pd.DataFrame) -> dict[str, alt.Chart]:
    return {
        "status": charts.status_bar_chart(analytics.status_counts(frame)),
        "daily count": charts.daily_status_chart(analytics.daily_by_status(frame), "count"),
        "daily amount": charts.daily_status_chart(analytics.daily_by_status(frame), "amount"),
        "time to authorise": charts.time_to_authorise_chart(analytics.time_to_authorise(frame)),
    }


def test_one_distinct_colour_per_status_in_status_order() -> None:
    assert tuple(charts.STATUS_COLOURS) == STATUSES
    assert len(set(COLOURS)) == len(STATUSES)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", colour) for colour in COLOURS)
    scale = charts.status_scale().to_dict()
    assert (scale["domain"], scale["range"]) == (list(STATUSES), COLOURS)


@pytest.mark.parametrize("name", ["status", "daily count", "daily amount", "time to authorise"])
@pytest.mark.parametrize("empty", [False, True])
def test_every_chart_colours_status_with_the_fixed_scale(mixed: pd.DataFrame, name: str, empty: bool) -> None:
    spec = all_charts(mixed.iloc[:0] if empty else mixed)[name].to_dict()
    colour = spec["encoding"]["color"]
    assert colour["field"] == "status"
    assert (colour["scale"]["domain"], colour["scale"]["range"]) == (list(STATUSES), COLOURS)
    assert (chart_data(spec) == []) is empty


def test_status_bar_chart_data_equals_status_counts(mixed: pd.DataFrame) -> None:
    counts = analytics.status_counts(mixed)
    spec = charts.status_bar_chart(counts).to_dict()
    shipped = [{k: row[k] for k in ("status", "count", "amount_cents")} for row in chart_data(spec)]
    assert shipped == counts.to_dict("records")
    assert spec["encoding"]["y"]["sort"] == list(STATUSES)
    assert spec["encoding"]["x"]["field"] == "count"
    assert {"calculate": "datum.amount_cents / 100", "as": "amount_eur"} in spec["transform"]


def test_status_bar_chart_reads_without_a_legend(mixed: pd.DataFrame) -> None:
    """Full status names on the axis (Vega's default label limit cut requires_payment_method), each bar
    labelled with its count, so the legend would only repeat the axis."""
    spec = charts.status_bar_chart(analytics.status_counts(mixed)).to_dict()
    assert spec["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert spec["encoding"]["color"]["legend"] is None
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]
    assert spec["layer"][1]["encoding"]["text"]["field"] == "count"
    assert spec["width"] == "container"


def temporal_fields(node: Any) -> set[str]:
    """Fields any part of a spec reads as dates (encodings, tooltips, layers)."""
    if isinstance(node, dict):
        own = {node["field"]} if node.get("type") == "temporal" and "field" in node else set()
        return own.union(*(temporal_fields(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(temporal_fields(v) for v in node))
    return set()


def test_daily_chart_ships_paris_days_and_stacks_in_status_order() -> None:
    frame = frame_of(
        alma_intent("pi_late", "canceled", 5_000, paris(2026, 11, 28, 23, 30)),
        alma_intent("pi_midnight", "succeeded", 6_000, paris(2026, 11, 29, 0, 0)),
        alma_intent("pi_noon", "canceled", 7_000, paris(2026, 11, 29, 12, 0)),
    )
    spec = charts.daily_status_chart(analytics.daily_by_status(frame), "count").to_dict()
    assert [(r["day"], r["status"], r["count"], r["amount_cents"]) for r in chart_data(spec)] == [
        ("2026-11-28", "canceled", 1, 5_000),
        ("2026-11-29", "canceled", 1, 7_000),
        ("2026-11-29", "succeeded", 1, 6_000),
    ]
    assert spec["encoding"]["x"]["type"] == "ordinal"  # a band per day: bars as wide as the day allows
    assert spec["encoding"]["x"]["scale"]["domain"] == ["2026-11-28", "2026-11-29"]
    # Read as a date anywhere, `day` would be parsed for the whole chart and stop matching the band domain.
    assert "day" not in temporal_fields(spec)
    assert spec["encoding"]["color"]["legend"]["labelLimit"] == 0
    assert spec["encoding"]["order"]["field"] == "status_rank"
    assert [r["status_rank"] for r in chart_data(spec)] == [
        STATUSES.index("canceled"),
        STATUSES.index("canceled"),
        STATUSES.index("succeeded"),
    ]


@pytest.mark.parametrize(
    ("measure", "field", "title"), [("count", "count", "Intents"), ("amount", "amount_eur", "Amount (EUR)")]
)
def test_daily_chart_measure_picks_the_axis(
    mixed: pd.DataFrame, measure: charts.Measure, field: str, title: str
) -> None:
    spec = charts.daily_status_chart(analytics.daily_by_status(mixed), measure).to_dict()
    assert (spec["encoding"]["y"]["field"], spec["encoding"]["y"]["title"]) == (field, title)
    assert sum(r["amount_cents"] for r in chart_data(spec)) == int(mixed["amount"].sum())


def test_daily_chart_keeps_a_slot_for_days_without_intents() -> None:
    frame = frame_of(
        alma_intent("pi_fri", "succeeded", 5_000, paris(2026, 11, 27, 10, 0)),
        alma_intent("pi_mon", "canceled", 6_000, paris(2026, 11, 30, 10, 0)),
    )
    spec = charts.daily_status_chart(analytics.daily_by_status(frame), "amount").to_dict()
    assert spec["encoding"]["x"]["scale"]["domain"] == ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    assert [r["day"] for r in chart_data(spec)] == ["2026-11-27", "2026-11-30"]


def test_daily_chart_rejects_an_unknown_measure(mixed: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="measure"):
        charts.daily_status_chart(analytics.daily_by_status(mixed), "eur")  # type: ignore[arg-type]  # not a Measure, on purpose


def test_time_to_authorise_chart_ships_buckets_not_intents(mixed: pd.DataFrame) -> None:
    durations = analytics.time_to_authorise(mixed)
    spec = charts.time_to_authorise_chart(durations).to_dict()
    assert [(r["bucket_start"], r["bucket_end"], r["status"], r["count"]) for r in chart_data(spec)] == [
        (60, 120, "requires_capture", 1),
        (60, 120, "succeeded", 3),
    ]
    assert spec["encoding"]["x"]["bin"] == "binned"
    assert spec["encoding"]["y"]["axis"] == {"tickMinStep": 1, "format": "d"}  # no "0.5 intents" ticks
    assert len(chart_data(spec)) < len(durations)
