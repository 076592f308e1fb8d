"""Chart specs: status coloured by the one fixed scale, and the data shipped equal to the analytics."""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import pandas as pd
import pytest

from dashboard import analytics, charts
from dashboard.domain import OUTCOMES
from tests.test_analytics import alma_intent, frame_of, mixed_intents, paris, succeeded

COLOURS = [charts.STATUS_COLOURS[o].chart for o in OUTCOMES]


@pytest.fixture
def mixed() -> pd.DataFrame:
    return frame_of(*mixed_intents())


def chart_data(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec["datasets"][spec["data"]["name"]]


def all_charts(frame: pd.DataFrame) -> dict[str, alt.Chart]:
    return {
        "status": charts.status_bar_chart(analytics.status_counts(frame)),
        "daily count": charts.daily_status_chart(analytics.daily_by_status(frame)),
        "daily amount": charts.daily_money_chart(analytics.daily_money(frame)),
        "time to authorise": charts.time_to_authorise_chart(
            analytics.time_to_authorise_buckets(analytics.time_to_authorise(frame))
        ),
    }


def test_one_distinct_colour_per_outcome_in_outcome_order() -> None:
    assert tuple(charts.STATUS_COLOURS) == OUTCOMES
    assert len(set(COLOURS)) == len(OUTCOMES)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", colour) for colour in COLOURS)
    scale = charts.outcome_scale().to_dict()
    assert (scale["domain"], scale["range"]) == (list(OUTCOMES), COLOURS)


def drawn_outcomes(spec: dict[str, Any]) -> list[str]:
    present = {row["outcome"] for row in chart_data(spec)}
    return [o for o in OUTCOMES if o in present]


@pytest.mark.parametrize("name", ["status", "daily count", "daily amount", "time to authorise"])
@pytest.mark.parametrize("empty", [False, True])
def test_every_chart_colours_words_and_lists_only_what_it_draws(mixed: pd.DataFrame, name: str, empty: bool) -> None:
    spec = all_charts(mixed.iloc[:0] if empty else mixed)[name].to_dict()
    colour = spec["encoding"]["color"]
    assert colour["field"] == "outcome"
    domain = drawn_outcomes(spec)
    assert colour["scale"] == {"domain": domain, "range": [charts.STATUS_COLOURS[o].chart for o in domain]}
    assert (chart_data(spec) == []) is empty
    assert not set().union(*(row.keys() for row in chart_data(spec))) & {"status"}  # no API words shipped
    assert spec["usermeta"] == {"embedOptions": {"actions": False}}  # no action menu over the controls


def test_status_bar_chart_data_equals_status_counts(mixed: pd.DataFrame) -> None:
    counts = analytics.status_counts(mixed)
    spec = charts.status_bar_chart(counts).to_dict()
    shipped = [{k: row[k] for k in ("outcome", "count", "amount_cents")} for row in chart_data(spec)]
    assert shipped == counts.to_dict("records")
    assert spec["encoding"]["y"]["sort"] == list(OUTCOMES)
    assert spec["encoding"]["x"]["field"] == "count"
    assert {"calculate": "datum.amount_cents / 100", "as": "amount_eur"} in spec["transform"]


def test_status_bar_chart_reads_without_a_legend(mixed: pd.DataFrame) -> None:
    """Full names on the axis (Vega's default label limit cuts long ones), each bar
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


def test_daily_chart_ships_paris_days_and_stacks_in_outcome_order() -> None:
    frame = frame_of(
        alma_intent("pi_late", "canceled", 5_000, paris(2026, 11, 28, 23, 30)),
        alma_intent("pi_midnight", "succeeded", 6_000, paris(2026, 11, 29, 0, 0)),
        alma_intent("pi_noon", "canceled", 7_000, paris(2026, 11, 29, 12, 0)),
    )
    spec = charts.daily_status_chart(analytics.daily_by_status(frame)).to_dict()
    assert [(r["day"], r["outcome"], r["count"], r["amount_cents"]) for r in chart_data(spec)] == [
        ("2026-11-28", "Canceled", 1, 5_000),
        ("2026-11-29", "Succeeded", 1, 6_000),
        ("2026-11-29", "Canceled", 1, 7_000),
    ]
    assert spec["encoding"]["x"]["type"] == "ordinal"  # a band per day: bars as wide as the day allows
    assert spec["encoding"]["x"]["scale"]["domain"] == ["2026-11-28", "2026-11-29"]
    # Read as a date anywhere, `day` would be parsed for the whole chart and stop matching the band domain.
    assert "day" not in temporal_fields(spec)
    assert spec["encoding"]["color"]["legend"]["labelLimit"] == 0
    assert spec["encoding"]["order"]["field"] == "outcome_rank"
    assert [r["outcome_rank"] for r in chart_data(spec)] == [
        OUTCOMES.index("Canceled"),
        OUTCOMES.index("Succeeded"),
        OUTCOMES.index("Canceled"),
    ]
    assert spec["encoding"]["color"]["legend"]["orient"] == "bottom"  # the plot keeps the width of the column


def test_money_chart_puts_received_above_and_lost_below(mixed: pd.DataFrame) -> None:
    """Expired and canceled amounts are never stacked on money received: received is positive, what expired or
    was declined is drawn below the axis, canceled and waiting amounts not at all."""
    spec = charts.daily_money_chart(analytics.daily_money(mixed)).to_dict()
    rows = chart_data(spec)
    assert spec["encoding"]["y"]["field"] == "signed_eur"
    assert {"calculate": "datum.signed_cents / 100", "as": "signed_eur"} in spec["transform"]
    received = sum(r["signed_cents"] for r in rows if r["outcome"] == "Succeeded")
    lost = sum(r["signed_cents"] for r in rows if r["outcome"] != "Succeeded")
    assert received == int(mixed["amount_received"].sum())
    assert lost == -int(mixed.loc[mixed["failure_kind"].notna(), "amount"].sum())
    assert {r["outcome"] for r in rows} == {"Succeeded", "Expired", "Declined"}


def test_money_chart_of_a_day_with_only_success_has_no_lost_legend() -> None:
    spec = charts.daily_money_chart(
        analytics.daily_money(frame_of(succeeded("pi_a", 5_000, paris(2026, 11, 2))))
    ).to_dict()
    assert spec["encoding"]["color"]["scale"]["domain"] == ["Succeeded"]


@pytest.mark.parametrize("measure", ["count", "amount"])
def test_daily_charts_keep_a_slot_for_days_without_intents(measure: str) -> None:
    frame = frame_of(
        succeeded("pi_fri", 5_000, paris(2026, 11, 27, 10, 0)),
        alma_intent("pi_mon", "succeeded", 6_000, paris(2026, 11, 30, 10, 0), amount_received=6_000),
    )
    chart = (
        charts.daily_status_chart(analytics.daily_by_status(frame))
        if measure == "count"
        else charts.daily_money_chart(analytics.daily_money(frame))
    )
    spec = chart.to_dict()
    assert spec["encoding"]["x"]["scale"]["domain"] == ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    assert [r["day"] for r in chart_data(spec)] == ["2026-11-27", "2026-11-30"]


def test_time_to_authorise_chart_ships_buckets_not_intents(mixed: pd.DataFrame) -> None:
    durations = analytics.time_to_authorise(mixed)
    spec = charts.time_to_authorise_chart(analytics.time_to_authorise_buckets(durations)).to_dict()
    assert [(r["bucket_start"], r["bucket_end"], r["outcome"], r["count"]) for r in chart_data(spec)] == [
        (60, 120, "Succeeded", 3),
        (60, 120, "Awaiting capture", 1),
    ]
    assert spec["encoding"]["x"]["bin"] == "binned"
    assert spec["encoding"]["y"]["axis"] == {"tickMinStep": 1, "format": "d"}  # no "0.5 intents" ticks
    assert len(chart_data(spec)) < len(durations)
