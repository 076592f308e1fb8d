"""Numbers and tables the pages show, computed from the intent frame. Pure: pandas in, pandas out.

Every function takes a frame with exactly `dashboard.intent_frame.COLUMNS` (what `IntentStore.intents_frame`
returns) and never reads the clock: "now" is always a parameter, in unix seconds. Money stays int cents;
EUR appears only in the display/export helpers: text made by `dashboard.money`, or an exact Decimal for
a table to format and sort. All work is vectorised (column operations, groupby), because the pages call
these on every Streamlit rerun, on up to 100k rows.

Public API (times are unix seconds unless a name ends in `_at` inside `intents_table`, where they are
tz-aware local timestamps):

- `PERIOD_CHOICES`, `Period(start, end)` (half-open [start, end)),
  `period_bounds(choice, now, custom=None, tz=DEFAULT_TZ) -> Period`
- `filter_intents(frame, *, statuses=None, outcomes_in=None, period=None, min_cents=None, max_cents=None, text=None,
  include_test=True)`
- `Kpis`, `kpis(frame) -> Kpis`, `sent_to_alma_mask(frame) -> Series[bool]`
- `outcomes(frame) -> Series` (domain.outcome per row: "Succeeded", "Expired"…; what every chart, table and
  CSV shows for a status), `status_counts(frame) -> [outcome, count, amount_cents]`
- `daily_by_status(frame, tz=DEFAULT_TZ) -> [day, outcome, count, amount_cents]`,
  `daily_money(frame, tz=DEFAULT_TZ) -> [day, outcome, amount_cents]` (received; lost to expiry, declines),
  `money_by_day(days, labels, amount, received)` (the same of rows that may be groups)
- `recent_failures(frame, limit=10)`, `recently_expired(frame, now, within_seconds)`,
  `recent_declines(frame, now, within_seconds)`
- `awaiting_customer(frame, now)` (with `countdown_urgency`), `awaiting_capture(frame, now, due_within_seconds)`
- `time_to_authorise(frame) -> [id, outcome, seconds]`,
  `time_to_authorise_buckets(durations, bucket_seconds=60) -> [bucket_start, bucket_end, outcome, count]`
- `intents_table(frame, now, tz=DEFAULT_TZ)`, `csv_export(frame, tz=DEFAULT_TZ) -> bytes`,
  `defuse_formulas(text) -> Series`, `CSV_COLUMNS`, `CSV_TEXT_COLUMNS`, `MONEY_COLUMNS`
- `to_local(seconds, tz=DEFAULT_TZ) -> Series[datetime64 tz-aware]`

CSV export safety: the export holds text anyone creating an intent controls (description, metadata) and
Stripe's messages. A cell starting with =, +, -, @, tab or carriage return is a formula to a spreadsheet,
and a spreadsheet may split a field on a comma, semicolon, tab or line break inside it: in the text columns
every such start gets an apostrophe (shown as text, not run). Amount, time,
installments and livemode columns are never touched: "-12.50" must stay a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from dashboard.domain import OUTCOMES, outcome
from dashboard.money import STRIPE_MAX_AMOUNT_CENTS, AmountError, cents_to_decimal_text, parse_eur

DEFAULT_TZ = "Europe/Paris"
PERIOD_CHOICES: tuple[str, ...] = ("24 h", "7 d", "30 d", "90 d", "Custom")
_ROLLING_PERIOD_SECONDS = {"24 h": 86_400, "7 d": 7 * 86_400, "30 d": 30 * 86_400, "90 d": 90 * 86_400}
# Statuses only reachable after the customer has been through Alma's page.
# Statuses only reachable through Alma's page (the store's SQL counts "sent to Alma" with them too).
PAST_ALMA_STATUSES = ("succeeded", "requires_capture", "processing")


def _flag(condition: pd.Series) -> pd.Series:
    """A nullable comparison as a plain bool mask: unknown (NA) counts as False."""
    return condition.fillna(False).astype(bool)


@dataclass(frozen=True)
class Period:
    """Half-open interval of `created` instants: start <= created < end (unix seconds)."""

    start: int
    end: int


def period_bounds(choice: str, now: int, custom: tuple[date, date] | None = None, tz: str = DEFAULT_TZ) -> Period:
    """Rolling choices end just after `now`; "Custom" covers whole local days, both dates included."""
    if choice in _ROLLING_PERIOD_SECONDS:
        return Period(start=now - _ROLLING_PERIOD_SECONDS[choice], end=now + 1)
    if choice != "Custom":
        raise ValueError(f"Unknown period {choice!r}; choose one of {', '.join(PERIOD_CHOICES)}.")
    if custom is None:
        raise ValueError("Choose a start and an end date.")
    first, last = custom
    if first > last:
        raise ValueError("The start date must not be after the end date.")
    zone = ZoneInfo(tz)

    def local_midnight(day: date) -> int:
        return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())

    return Period(start=local_midnight(first), end=local_midnight(last + timedelta(days=1)))


def filter_intents(
    frame: pd.DataFrame,
    *,
    statuses: Sequence[str] | None = None,
    outcomes_in: Sequence[str] | None = None,
    period: Period | None = None,
    min_cents: int | None = None,
    max_cents: int | None = None,
    text: str | None = None,
    include_test: bool = True,
) -> pd.DataFrame:
    """Rows matching every given criterion. None (or an empty status list / blank text) means "any",
    as an empty multiselect does. `statuses` are API statuses, `outcomes_in` domain.outcome labels. Amount
    bounds are inclusive, on `amount`; the period is on `created`.
    Text is a case-insensitive literal substring of id, description or metadata. `include_test=False` leaves
    out the intents Test lab made (column test_lab), as finance figures do by default."""
    keep = pd.Series(True, index=frame.index)
    if statuses:
        keep &= frame["status"].isin(list(statuses))
    if not include_test:
        keep &= ~frame["test_lab"]
    if outcomes_in:
        keep &= outcomes(frame).isin(list(outcomes_in))
    if period is not None:
        keep &= (frame["created"] >= period.start) & (frame["created"] < period.end)
    if min_cents is not None:
        keep &= frame["amount"] >= min_cents
    if max_cents is not None:
        keep &= frame["amount"] <= max_cents
    needle = (text or "").strip()
    if needle:
        found = pd.Series(False, index=frame.index)
        for column in SEARCHED_COLUMNS:
            found |= _flag(frame[column].str.contains(needle, case=False, regex=False, na=False))
        if (cents := search_amount(needle)) is not None:
            found |= frame["amount"] == cents
        keep &= found
    return frame[keep]


# An email, part of a name, an order id in metadata, an intent id or a word of the description.
SEARCHED_COLUMNS = ("id", "description", "metadata_text", "customer_name", "customer_email")


def search_amount(needle: str) -> int | None:
    """A search like "120.50" also finds intents of that amount; text that is not one amount (or could be
    read two ways) searches as text only."""
    try:
        return parse_eur(needle, min_cents=1, max_cents=STRIPE_MAX_AMOUNT_CENTS)
    except AmountError:
        return None


def sent_to_alma_mask(frame: pd.DataFrame) -> pd.Series:
    """Intents whose customer reached Alma's page (requires_action at least once): the sync saw the
    redirect, or the status/failure can only follow it (authorised, expired, or refused)."""
    return _flag(
        frame["sent_to_alma_at"].notna() | frame["status"].isin(PAST_ALMA_STATUSES) | frame["failure_kind"].notna()
    )


@dataclass(frozen=True)
class Kpis:
    intents: int
    succeeded: int
    succeeded_cents: int  # amount_received of succeeded intents
    sent_to_alma: int  # see sent_to_alma_mask
    conversion: float | None  # succeeded / sent_to_alma; None when nothing was sent
    awaiting_customer: int  # status requires_action
    expired: int
    declined: int


def kpis(frame: pd.DataFrame) -> Kpis:
    """The Overview KPI row for the rows given (filter by period first)."""
    status = frame["status"]
    succeeded = _flag(status == "succeeded")
    sent = int(sent_to_alma_mask(frame).sum())
    succeeded_count = int(succeeded.sum())
    return Kpis(
        intents=len(frame),
        succeeded=succeeded_count,
        succeeded_cents=int(frame.loc[succeeded, "amount_received"].sum()),
        sent_to_alma=sent,
        conversion=succeeded_count / sent if sent else None,
        awaiting_customer=int((status == "requires_action").sum()),
        expired=int((frame["failure_kind"] == "expired").sum()),
        declined=int((frame["failure_kind"] == "declined").sum()),
    )


@dataclass(frozen=True)
class MoneyTotals:
    """Money as it moved on the balance in a period, in cents: charges in, refunds out, Alma's fees."""

    gross: int  # charges (succeeded or captured)
    refunded: int  # refunds made, less failed refunds given back
    fees: int
    net: int  # gross - refunded - fees
    payments: int  # how many charges


_CHARGE_TYPES = ("charge", "payment")


def money_totals(moves: pd.DataFrame) -> MoneyTotals:
    """Totals of store.money_moves rows (already bounded to the period by the date money moved)."""
    charges = moves["type"].isin(_CHARGE_TYPES)
    return MoneyTotals(
        gross=int(moves.loc[charges, "amount"].sum()),
        refunded=-int(moves.loc[~charges, "amount"].sum()),
        fees=int(moves["fee"].sum()),
        net=int(moves["net"].sum()),
        payments=int(charges.sum()),
    )


def previous_period(period: Period) -> Period:
    """The period of the same length just before: what a change is measured against."""
    return Period(period.start - (period.end - period.start), period.start)


ReportGrain = Literal["month", "week"]
INSTALLMENT_PLANS = (1, 2, 3, 4)
_REPORT_FIGURES = ("gross", "refunded", "fees", "net")
REPORT_COLUMNS: dict[str, str] = {
    "period": "string",  # the first local day of the month or week, ISO
    **{f"{figure}_cents": "int64" for figure in _REPORT_FIGURES},
    "payments": "int64",
    "average_basket_cents": "int64",
    **{f"gross_{plan}x_cents": "int64" for plan in INSTALLMENT_PLANS},
    **{f"payments_{plan}x": "int64" for plan in INSTALLMENT_PLANS},
}


def finance_report(moves: pd.DataFrame, grain: ReportGrain, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Per local month or week (by the date money moved), oldest first: gross, refunded, fees, net, payments,
    average basket (gross ÷ payments, rounded half up to the cent) and gross and payments per installment
    plan (1 to 4; Alma pays in 1 when the charge does not say). All money in int cents."""
    local = to_local(moves["created"], tz).dt.tz_localize(None)
    periods = local.dt.to_period("M" if grain == "month" else "W-SUN").dt.start_time.dt.strftime("%Y-%m-%d")
    charges = moves["type"].isin(_CHARGE_TYPES)
    plan = moves["installments"].fillna(1).astype("int64")
    parts = pd.DataFrame(
        {
            "period": periods,
            "gross_cents": moves["amount"].where(charges, 0),
            "refunded_cents": (-moves["amount"]).where(~charges, 0),
            "fees_cents": moves["fee"],
            "net_cents": moves["net"],
            "payments": charges.astype("int64"),
            **{f"gross_{n}x_cents": moves["amount"].where(charges & (plan == n), 0) for n in INSTALLMENT_PLANS},
            **{f"payments_{n}x": (charges & (plan == n)).astype("int64") for n in INSTALLMENT_PLANS},
        }
    )
    report = parts.groupby("period", sort=True).sum().reset_index()
    payments = report["payments"]
    report["average_basket_cents"] = (report["gross_cents"] * 2 + payments) // (payments * 2).where(payments > 0, 1)
    report.loc[payments == 0, "average_basket_cents"] = 0
    return report.reindex(columns=list(REPORT_COLUMNS)).astype(REPORT_COLUMNS)


def report_csv(report: pd.DataFrame) -> bytes:
    """The finance report as CSV: each money figure as plain EUR ("1234.56") and as int cents."""
    export = pd.DataFrame({"period": report["period"]})
    for column in REPORT_COLUMNS:
        if column.endswith("_cents"):
            export[column.removesuffix("_cents") + "_eur"] = report[column].map(cents_to_decimal_text)
        if column != "period":
            export[column] = report[column]
    return _csv_bytes(export)


def download_name(what: str, start: date | None = None, last: date | None = None) -> str:
    """A file named after what it holds: alma-intents-succeeded-2026-11-24-to-2026-11-30.csv (no dates when
    the rows are of no one period)."""
    slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")
    days = f"-{start.isoformat()}-to-{last.isoformat()}" if start and last else ""
    return f"alma-{slug}{days}.csv"


def local_days(period: Period, tz: str = DEFAULT_TZ) -> tuple[date, date]:
    """The first and last local day a period covers (its end is exclusive)."""
    zone = ZoneInfo(tz)
    return datetime.fromtimestamp(period.start, zone).date(), datetime.fromtimestamp(period.end - 1, zone).date()


_OUTCOME_DTYPE = pd.CategoricalDtype(list(OUTCOMES), ordered=True)


def outcomes(frame: pd.DataFrame) -> pd.Series:
    """Each row's domain.outcome ("Expired", "Awaiting customer"…) as an ordered categorical, so groupby and
    sorts follow domain.OUTCOMES. domain.outcome runs once per distinct (status, failure_kind) pair."""
    pairs = pd.MultiIndex.from_arrays([frame["status"].fillna(""), frame["failure_kind"].fillna("")])
    codes, distinct = pd.factorize(pairs)
    labels = np.array([outcome(status, kind or None) for status, kind in distinct], dtype=object)
    return pd.Series(pd.Categorical(labels[codes], dtype=_OUTCOME_DTYPE), index=frame.index, name="outcome")


_SUMMARY_DTYPES = {"outcome": "string", "count": "int64", "amount_cents": "int64"}


def _count_and_amount(frame: pd.DataFrame, keys: list[pd.Series]) -> pd.DataFrame:
    grouped = frame.groupby(keys, observed=True)["amount"].agg(count="size", amount_cents="sum")
    return grouped.reset_index().astype(_SUMMARY_DTYPES)


def status_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """[outcome, count, amount_cents] for the outcomes present, in domain.OUTCOMES order.
    amount_cents sums the intents' `amount` (what was asked, whatever the outcome)."""
    return _count_and_amount(frame, [outcomes(frame)])


def to_local(seconds: pd.Series, tz: str = DEFAULT_TZ) -> pd.Series:
    """Unix seconds (nullable) -> tz-aware timestamps in `tz` (NaT where unknown)."""
    return pd.to_datetime(seconds, unit="s", utc=True).dt.tz_convert(tz)


def _local_days(frame: pd.DataFrame, tz: str) -> pd.Series:
    return to_local(frame["created"], tz).dt.normalize().rename("day")


def daily_by_status(frame: pd.DataFrame, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """[day, outcome, count, amount_cents] by local calendar day of `created` (day = local midnight,
    tz-aware, so DST days are 23 or 25 hours long), days ascending, outcomes in domain.OUTCOMES order."""
    return _count_and_amount(frame, [_local_days(frame, tz), outcomes(frame)])


# The daily money chart: what came in, and apart what was lost (asked of customers who let the window run out
# or were refused). Canceled and waiting amounts are neither.
RECEIVED, LOST = "Succeeded", ("Expired", "Declined")


def daily_money(frame: pd.DataFrame, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """[day, outcome, amount_cents] per local day of `created`: outcome "Succeeded" sums amount_received of
    every intent (money in, partial captures included); "Expired" and "Declined" sum the `amount` those
    intents asked for. Days and outcomes in order; rows with no money are left out."""
    return money_by_day(_local_days(frame, tz), outcomes(frame), frame["amount"], frame["amount_received"])


def money_by_day(days: pd.Series, labels: pd.Series, amount: pd.Series, received: pd.Series) -> pd.DataFrame:
    """daily_money of rows given as their local day, outcome label and cents (aligned Series). A row may be one
    intent or the sums of a group of them: the sums add up the same."""
    label = labels.astype(_OUTCOME_DTYPE)
    lost = label.isin(list(LOST))
    money = pd.DataFrame(
        {"day": days, "outcome": label.where(lost, RECEIVED), "amount_cents": amount.where(lost, received)}
    )
    money = money[money["amount_cents"] > 0]
    grouped = money.groupby(["day", "outcome"], observed=True)["amount_cents"].sum().reset_index()
    return grouped.astype({"outcome": "string", "amount_cents": "int64"})


def _reason(frame: pd.DataFrame) -> pd.Series:
    """What went wrong, for people: Stripe's message, else its code."""
    return frame["error_message"].fillna(frame["error_code"])


_FAILURE_COLUMNS = [
    "id",
    "status",
    "outcome",
    "failure_kind",
    "reason",
    "error_code",
    "amount",
    "sent_to_alma_at",
    "updated_at",
]


def _failures(frame: pd.DataFrame, kinds: Sequence[str]) -> pd.DataFrame:
    failed = frame[_flag(frame["failure_kind"].isin(list(kinds)))]
    failed = failed.assign(reason=_reason(failed), outcome=outcomes(failed).astype("string"))
    return failed.sort_values(["updated_at", "id"], ascending=False, na_position="last")


def recent_failures(frame: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """The newest `limit` expired or declined intents (by updated_at): [id, status, failure_kind, reason,
    error_code, amount, sent_to_alma_at, updated_at]."""
    return _failures(frame, ("expired", "declined"))[_FAILURE_COLUMNS].head(limit).reset_index(drop=True)


def _recent_of_kind(frame: pd.DataFrame, kind: str, now: int, within_seconds: int) -> pd.DataFrame:
    failed = _failures(frame, (kind,))
    failed = failed[_flag(failed["updated_at"] >= now - within_seconds)]
    waited = (failed["updated_at"] - failed["sent_to_alma_at"]).clip(lower=0)
    return failed.assign(waited_seconds=waited)[[*_FAILURE_COLUMNS, "waited_seconds"]].reset_index(drop=True)


def recently_expired(frame: pd.DataFrame, now: int, within_seconds: int) -> pd.DataFrame:
    """Intents back in requires_payment_method because the window ran out, in the last `within_seconds`,
    newest first. `updated_at` is the expiry instant; waited_seconds = updated_at - sent_to_alma_at."""
    return _recent_of_kind(frame, "expired", now, within_seconds)


def recent_declines(frame: pd.DataFrame, now: int, within_seconds: int) -> pd.DataFrame:
    """Same shape as recently_expired, for intents the customer or Alma refused."""
    return _recent_of_kind(frame, "declined", now, within_seconds)


# How near a waiting customer's window is to its end, by the share of it gone: from half on "soon", in its last
# sixth (the last 10 minutes of Alma's hour) "ending". Pages colour the countdown by it.
Urgency = Literal["calm", "soon", "ending"]
URGENCY_FROM_FRACTION: tuple[tuple[float, Urgency], ...] = ((5 / 6, "ending"), (0.5, "soon"), (0.0, "calm"))


def countdown_urgency(fraction_elapsed: pd.Series) -> pd.Series:
    """Each fraction's Urgency (NA where the expiry is unknown)."""
    urgency = pd.Series(pd.NA, index=fraction_elapsed.index, dtype="string")
    for start, level in reversed(URGENCY_FROM_FRACTION):
        urgency = urgency.mask(_flag(fraction_elapsed >= start), level)
    return urgency


def awaiting_customer(frame: pd.DataFrame, now: int) -> pd.DataFrame:
    """requires_action intents, soonest expiry first: [id, amount, description, sent_to_alma_at,
    expires_at, seconds_left (>= 0), fraction_elapsed (0..1 of the window), urgency, redirect_url].
    Unknown expiry (redirect not yet seen by the sync) gives NA and sorts last."""
    waiting = frame[_flag(frame["status"] == "requires_action")]
    window = waiting["expires_at"] - waiting["sent_to_alma_at"]
    elapsed = ((now - waiting["sent_to_alma_at"]) / window.where(window > 0)).clip(lower=0.0, upper=1.0)
    waiting = waiting.assign(
        seconds_left=(waiting["expires_at"] - now).clip(lower=0),
        fraction_elapsed=elapsed,
        urgency=countdown_urgency(elapsed),
    )
    columns = [
        "id",
        "amount",
        "description",
        "sent_to_alma_at",
        "expires_at",
        "seconds_left",
        "fraction_elapsed",
        "urgency",
        "redirect_url",
    ]
    ordered = waiting.sort_values(["expires_at", "id"], na_position="last", kind="stable")
    return ordered[columns].reset_index(drop=True)


def awaiting_capture(frame: pd.DataFrame, now: int, due_within_seconds: int) -> pd.DataFrame:
    """requires_capture intents, nearest capture deadline first: [id, amount, amount_capturable,
    installments, description, authorized_at, capture_deadline, seconds_to_deadline (>= 0), due_soon (the
    deadline is within `due_within_seconds`: the captures-due alert's horizon)]."""
    held = frame[_flag(frame["status"] == "requires_capture")]
    left = held["capture_deadline"] - now
    held = held.assign(seconds_to_deadline=left.clip(lower=0), due_soon=_flag(left <= due_within_seconds))
    columns = [
        "id",
        "amount",
        "amount_capturable",
        "installments",
        "description",
        "authorized_at",
        "capture_deadline",
        "seconds_to_deadline",
        "due_soon",
    ]
    ordered = held.sort_values(["capture_deadline", "id"], na_position="last", kind="stable")
    return ordered[columns].reset_index(drop=True)


def time_to_authorise(frame: pd.DataFrame) -> pd.DataFrame:
    """[id, outcome, seconds] from the Alma redirect to the authorisation, for intents knowing both."""
    known = frame[_flag(frame["authorized_at"].notna() & frame["sent_to_alma_at"].notna())]
    seconds = (known["authorized_at"] - known["sent_to_alma_at"]).clip(lower=0).astype("int64")
    return pd.DataFrame(
        {"id": known["id"], "outcome": outcomes(known).astype("string"), "seconds": seconds}
    ).reset_index(drop=True)


def time_to_authorise_buckets(durations: pd.DataFrame, bucket_seconds: int = 60) -> pd.DataFrame:
    """Histogram of a time_to_authorise frame: [bucket_start, bucket_end, outcome, count] in seconds.
    Pre-binned here so a chart ships a few dozen rows to the browser, not one per intent."""
    start = (durations["seconds"] // bucket_seconds) * bucket_seconds
    grouped = durations.groupby(
        [start.rename("bucket_start"), durations["outcome"].astype(_OUTCOME_DTYPE)], observed=True
    ).size()
    histogram = grouped.rename("count").reset_index()
    histogram.insert(1, "bucket_end", histogram["bucket_start"] + bucket_seconds)
    return histogram.astype({"bucket_start": "int64", "bucket_end": "int64", "outcome": "string", "count": "int64"})


def _per_amount(cents: pd.Series, convert: Callable[[int], object]) -> pd.Series:
    """Apply a cents converter once per distinct amount (real shops repeat their prices); NA stays None."""
    codes, distinct = pd.factorize(cents)  # NA gets code -1: the None appended last
    values = np.array([*(convert(int(value)) for value in distinct), None], dtype=object)
    return pd.Series(values[codes], index=cents.index, dtype=object)


def exact_eur(cents: int) -> Decimal:
    """1234 -> Decimal("12.34"): exact, and a table sorts it as a number (EUR text would sort as text)."""
    return Decimal(cents).scaleb(-2)


MONEY_COLUMNS: tuple[str, ...] = ("amount", "amount_received", "amount_capturable")


def _money_pairs(
    frame: pd.DataFrame, to_eur: Callable[[int], object], columns: Sequence[str] = MONEY_COLUMNS
) -> dict[str, pd.Series]:
    """Each money column twice, `<column>_eur` (to_eur of the cents) then `<column>_cents` (the int); a
    missing amount (NA) stays missing in both."""
    pairs: dict[str, pd.Series] = {}
    for column in columns:
        pairs[f"{column}_eur"] = _per_amount(frame[column], to_eur)
        pairs[f"{column}_cents"] = frame[column]
    return pairs


def intents_table(frame: pd.DataFrame, now: int, tz: str = DEFAULT_TZ) -> pd.DataFrame:
    """Display-ready rows for the Intents page, in the frame's order (the store sorts). Money as
    `<column>_eur` (exact Decimal EUR, for a number column formatted as euros) and `<column>_cents` (int) for
    amount, amount_received and amount_capturable; no float money anywhere. `*_at` columns are tz-aware
    timestamps in `tz`; expires_in_seconds is set while requires_action."""
    ordered = frame
    waiting = _flag(ordered["status"] == "requires_action")
    table = pd.DataFrame(
        {
            "id": ordered["id"],
            "status": ordered["status"],
            "outcome": outcomes(ordered).astype("string"),
            **_money_pairs(ordered, exact_eur),
            "created_at": to_local(ordered["created"], tz),
            "updated_at": to_local(ordered["updated_at"], tz),
            "expires_in_seconds": (ordered["expires_at"] - now).clip(lower=0).where(waiting),
            "capture_deadline_at": to_local(ordered["capture_deadline"], tz),
            "capture_method": ordered["capture_method"],
            "installments": ordered["installments"],
            "failure_kind": ordered["failure_kind"],
            "reason": _reason(ordered),
            "description": ordered["description"],
            "metadata": ordered["metadata_text"],
            "customer_name": ordered["customer_name"],
            "customer_email": ordered["customer_email"],
            "alma_transaction_id": ordered["alma_transaction_id"],
        }
    )
    return table.reset_index(drop=True)


def _iso(seconds: pd.Series, tz: str) -> pd.Series:
    """ISO 8601 with the UTC offset ("2026-11-29T10:00:00+01:00"); empty where unknown. Built from
    numpy's wall-clock text plus the offset, since Series.dt.strftime is ~40x slower at 100k rows."""
    wall = to_local(seconds, tz).dt.tz_localize(None)
    offset_minutes = (wall - pd.to_datetime(seconds, unit="s")).dt.total_seconds() // 60
    offset_text = offset_minutes.map(
        {
            m: f"{'-' if m < 0 else '+'}{int(abs(m)) // 60:02d}:{int(abs(m)) % 60:02d}"
            for m in offset_minutes.dropna().unique()
        }
    ).astype("string")
    text = pd.Series(np.datetime_as_string(wall.to_numpy(), unit="s"), index=seconds.index, dtype="string")
    return (text + offset_text).where(seconds.notna(), "")


# The export's columns, in order. redirect_url is left out: not a secret, but a live payment link.
_CSV_TIMES: tuple[str, ...] = (
    "created",
    "updated_at",
    "sent_to_alma_at",
    "expires_at",
    "authorized_at",
    "capture_deadline",
    "canceled_at",
)
# What moved on the balance for an intent (store.money_of): empty in the export when nothing moved yet.
MONEY_MOVED_COLUMNS: tuple[str, ...] = ("fee", "net", "refunded")
METADATA_PREFIX = "metadata."  # one column per metadata key: metadata.order_id
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "status",
    "outcome",  # domain.outcome: the status in the words the dashboard shows
    *(f"{c}_{unit}" for c in (*MONEY_COLUMNS, *MONEY_MOVED_COLUMNS) for unit in ("eur", "cents")),
    "currency",
    "capture_method",
    *_CSV_TIMES,
    "failure_kind",
    "error_code",
    "error_message",
    "cancellation_reason",
    "installments",
    "customer_name",
    "customer_email",
    "alma_transaction_id",
    "latest_charge_id",
    "payment_method_types",
    "description",
    "livemode",
)
# Free text from Stripe or from whoever created the intent (description, metadata, messages...). Money,
# instants, installments and livemode are ours and numeric or fixed-form, and stay exactly as written.
CSV_TEXT_COLUMNS: tuple[str, ...] = tuple(
    c for c in CSV_COLUMNS if not c.endswith(("_eur", "_cents")) and c not in (*_CSV_TIMES, "installments", "livemode")
)
# A spreadsheet runs a cell starting with =, +, -, @, tab or carriage return as a formula ("=HYPERLINK(...)"),
# also behind spaces or a quote. A cell starts at the start of a field, or after any character a spreadsheet may
# split the file on: a comma, a semicolon (French Excel's default), a tab, or a line break. Each such start gets
# an apostrophe, so "x;=1+1;" read by a spreadsheet splitting on ";" gives the text "'=1+1", never a formula.
_FORMULA_CELL_START = r"(^|[,;\t\r\n])(?=[ \"]*[=+\-@\t\r])"


def defuse_formulas(text: pd.Series) -> pd.Series:
    """An apostrophe before every place a spreadsheet could start a formula cell; the rest as it is."""
    return text.astype("string").str.replace(_FORMULA_CELL_START, r"\1'", regex=True)


def csv_columns(metadata_keys: Sequence[str] = ()) -> list[str]:
    """The export's header: CSV_COLUMNS, then `metadata.<key>` for each key, in the given order."""
    return [*CSV_COLUMNS, *(METADATA_PREFIX + key for key in metadata_keys)]


def csv_export(
    frame: pd.DataFrame,
    tz: str = DEFAULT_TZ,
    *,
    money: pd.DataFrame | None = None,
    metadata: Mapping[str, Mapping[str, str]] | None = None,
    metadata_keys: Sequence[str] = (),
    header: bool = True,
) -> bytes:
    """UTF-8 CSV of exactly the given rows, in their order, columns csv_columns(metadata_keys). Amounts appear
    twice: EUR with 2 decimals (plain "1234.56") and int cents; `money` (indexed by intent id, columns
    MONEY_MOVED_COLUMNS in cents) gives fee, net and refunded, empty where nothing moved. `metadata` gives each
    intent's pairs, one column per key. Instants are ISO 8601 with offset in `tz`. Text columns pass through
    defuse_formulas, against formula injection. Lines end in CRLF (RFC 4180): with a bare LF, Python's csv
    would leave a field holding a lone CR unquoted. `header=False` gives the rows only: a long export is
    written batch after batch under one header."""
    moved = (money if money is not None else pd.DataFrame()).reindex(
        index=frame["id"], columns=list(MONEY_MOVED_COLUMNS)
    )
    moved = moved.astype("Int64").set_axis(frame.index)
    known = metadata or {}
    export = pd.DataFrame(
        {
            "id": frame["id"],
            "status": frame["status"],
            "outcome": outcomes(frame).astype("string"),
            **_money_pairs(frame, cents_to_decimal_text),
            **_money_pairs(moved, cents_to_decimal_text, MONEY_MOVED_COLUMNS),
            "currency": frame["currency"],
            "capture_method": frame["capture_method"],
            **{column: _iso(frame[column], tz) for column in _CSV_TIMES},
            "failure_kind": frame["failure_kind"],
            "error_code": frame["error_code"],
            "error_message": frame["error_message"],
            "cancellation_reason": frame["cancellation_reason"],
            "installments": frame["installments"],
            "customer_name": frame["customer_name"],
            "customer_email": frame["customer_email"],
            "alma_transaction_id": frame["alma_transaction_id"],
            "latest_charge_id": frame["latest_charge_id"],
            "payment_method_types": frame["payment_method_types"],
            "description": frame["description"],
            "livemode": frame["livemode"],
            **{
                METADATA_PREFIX + key: pd.Series(
                    [known.get(intent_id, {}).get(key) for intent_id in frame["id"]], index=frame.index, dtype="string"
                )
                for key in metadata_keys
            },
        },
        columns=csv_columns(metadata_keys),
    )
    text_columns = [*CSV_TEXT_COLUMNS, *(METADATA_PREFIX + key for key in metadata_keys)]
    export[text_columns] = export[text_columns].apply(defuse_formulas)
    return _csv_bytes(export, header=header)


def _csv_bytes(export: pd.DataFrame, *, header: bool = True) -> bytes:
    """Every download's CSV dialect: UTF-8, a header row, CRLF line ends (what spreadsheets expect)."""
    csv_text: str = export.to_csv(index=False, header=header, lineterminator="\r\n")
    return csv_text.encode("utf-8")
