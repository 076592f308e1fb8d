"""Reports against the sandbox: the issue's money example per month and per week, with its CSV named after
what it holds."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard.analytics import finance_report, report_csv
from dashboard.gateway import StripeGateway
from tests.conftest import SandboxServer
from tests.pages.conftest import Download, open_app
from tests.pages.test_overview import paid_intents_with_refunds

PAGE = "app_pages/reports.py"
FEE = (10_000 * 350 + 5_000) // 10_000 + 25  # the sandbox's default Alma fee on 100 EUR


def test_a_month_of_three_payments_and_two_refunds(
    app_env: SandboxServer, gateway: StripeGateway, downloads: list[Download]
) -> None:
    paid_intents_with_refunds(gateway)
    at = open_app(PAGE)
    [row] = at.dataframe[0].value.to_dict("records")
    paris = ZoneInfo("Europe/Paris")
    assert row["period"] == datetime.fromtimestamp(app_env.now(), paris).strftime("%Y-%m-01")
    money = {key: int(row[f"{key}_cents"] * 100) for key in ("gross", "refunded", "fees", "net", "average_basket")}
    assert money == {
        "gross": 30_000,
        "refunded": 11_000,
        "fees": 3 * FEE,
        "net": 30_000 - 11_000 - 3 * FEE,
        "average_basket": 10_000,
    }
    installments = {n: row[f"payments_{n}x"] for n in (1, 2, 3, 4)}
    assert sum(installments.values()) == row["payments"] == 3
    assert at.get("vega_lite_chart")  # the chart is drawn

    build, name = downloads[-1].build, downloads[-1].file_name
    last = datetime.fromtimestamp(app_env.now(), paris).date()
    assert re.search(rf"alma-finance-by-month-\d{{4}}-\d{{2}}-\d{{2}}-to-{last}\.csv", name), name
    [exported] = list(csv.DictReader(io.StringIO(build().decode())))
    assert (exported["gross_eur"], exported["refunded_cents"]) == ("300.00", "11000")


def test_an_empty_period_says_so(app_env: SandboxServer) -> None:
    at = open_app(PAGE)
    assert any("No money moved in this period." in i.value for i in at.info)
    assert not at.get("download_button")


def test_weeks_start_on_monday(app_env: SandboxServer, gateway: StripeGateway) -> None:
    paid_intents_with_refunds(gateway)
    at = open_app(PAGE)
    at.button_group(key="reports_grain").set_value("week").run()
    [row] = at.dataframe[0].value.to_dict("records")
    assert datetime.fromisoformat(row["period"]).weekday() == 0  # weeks start on Monday
    assert row["payments"] == 3


def test_the_csv_has_eur_and_cents() -> None:
    moves = pd.DataFrame(
        {
            "id": ["t1", "r1"],
            "type": ["charge", "refund"],
            "amount": [10_000, -1_000],
            "fee": [FEE, 0],
            "net": [10_000 - FEE, -1_000],
            "created": [1_764_633_600, 1_764_633_700],
            "intent_id": ["a", "a"],
            "installments": pd.array([3, 3], dtype="Int64"),
        }
    )
    [row] = list(csv.DictReader(io.StringIO(report_csv(finance_report(moves, "month")).decode())))
    assert (row["gross_eur"], row["gross_cents"], row["refunded_eur"], row["gross_3x_eur"]) == (
        "100.00",
        "10000",
        "10.00",
        "100.00",
    )
