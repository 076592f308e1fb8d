"""The Intents page's CSV: every row of the current filter, read from the store a batch at a time (never the
whole history in one frame), with each intent's fee, net and refunded amount and one column per metadata key.
Streamlit-free: the page hands the bytes to a download button."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard import analytics
from dashboard.intent_frame import COLUMNS, typed_frame
from dashboard.store import IntentFilter, IntentStore

BATCH_ROWS = 2_000


def intents_csv(store: IntentStore, where: IntentFilter, tz: str, batch: int = BATCH_ROWS) -> bytes:
    """csv_export of the filter's rows, newest first, written under one header batch after batch."""
    keys = store.metadata_keys(where)
    parts = [analytics.csv_export(typed_frame(pd.DataFrame(columns=list(COLUMNS))), tz, metadata_keys=keys)]
    for rows in store.intent_batches(where, batch=batch):
        ids = list(rows["id"])
        moved = store.money_of(ids)
        money = pd.DataFrame(
            [(m.fee, m.net, m.refunded) for m in moved.values()],
            index=list(moved),
            columns=list(analytics.MONEY_MOVED_COLUMNS),
        )
        metadata = store.metadata_of(ids)
        parts.append(analytics.csv_export(rows, tz, money=money, metadata=metadata, metadata_keys=keys, header=False))
    return b"".join(parts)


def intents_download_name(outcomes: Sequence[str], period: analytics.Period | None, tz: str) -> str:
    """alma-intents-succeeded-2026-11-24-to-2026-11-30.csv: the statuses chosen (none: every one) and the
    period's local days."""
    what = " ".join(["intents", *outcomes])
    if period is None:
        return analytics.download_name(what)
    return analytics.download_name(what, *analytics.local_days(period, tz))
