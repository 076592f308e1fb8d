"""What the incremental sync costs Stripe, against the naive way, in one run.

A sandbox is seeded with N Alma intents (default 20,000; `--n`). Requests are counted by the sandbox itself
(GET /_sandbox/stats), so retries and pagination are all included.

  first sync     AlmaSync into an empty store, run in a child process so its peak RSS is its own.
  refresh k=0    AlmaSync.sync_once() with nothing new; then k=100 after K new Alma intents were created and
                 sent to Alma (two events each).
  naive refresh  what a dashboard without a store does on every rerun: re-list the whole lookback window with
                 stripe-python's auto-paging (StripeObjects, expand[]=data.latest_charge) and keep the Alma ones.
  analytics      the Overview page's computations (filter to 30 days, KPIs, status counts, daily by status,
                 recent failures) on 1k and 100k stored intents, plus the store read that feeds them.

Targets: first sync <= ceil(N/100) + 3 requests; refresh <= ceil(k/100) + 2 requests; peak RSS < 300 MB at
N = 100,000 (run `--n 100000` to check that one).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import stripe  # the benchmark plays the naive dashboard, which calls stripe directly

from dashboard import analytics
from dashboard.domain import AlmaIntent, is_alma
from dashboard.gateway import CreateIntentRequest, StripeGateway, submission_idempotency_key
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, LOCAL_SANDBOX_KEY, Settings
from dashboard.store import IntentStore
from dashboard.sync import DAY_SECONDS, AlmaSync

AUTH_WINDOW = AUTH_WINDOW_SECONDS
LOOKBACK_DAYS = 90
ANALYTICS_SIZES = (1_000, 100_000)
ANALYTICS_REPEATS = 5


def build_sync(base_url: str, db: Path) -> AlmaSync:
    sandbox = LocalSandbox.attach(base_url)
    return AlmaSync(
        StripeGateway(Settings(), api_base=base_url),
        IntentStore(db, AUTH_WINDOW),
        sandbox,
        lookback_days=LOOKBACK_DAYS,
    )


def child_first_sync(base_url: str, db: Path) -> None:
    """Runs in its own process: one first sync (the store at `db` is empty), then its own peak RSS as JSON on
    stdout."""
    started = time.perf_counter()
    result = build_sync(base_url, db).sync_once()
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "intents": result.intents_written,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
            }
        )
    )


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def counted(sandbox: LocalSandbox, action: Callable[[], Any]) -> tuple[Any, int, float]:
    before = sandbox.request_count()
    result, seconds = timed(action)
    return result, sandbox.request_count() - before, seconds


def naive_relist(sandbox: LocalSandbox) -> int:
    """Every rerun re-lists the window; returns how many Alma intents it saw."""
    client = stripe.StripeClient(LOCAL_SANDBOX_KEY, base_addresses={"api": sandbox.base_url})
    since = sandbox.now() - LOOKBACK_DAYS * DAY_SECONDS
    listing = client.v1.payment_intents.list(
        {"created": {"gte": since}, "limit": 100, "expand": ["data.latest_charge", "data.payment_method"]}
    )
    return sum(is_alma(AlmaIntent.from_stripe(pi.to_dict())) for pi in listing.auto_paging_iter())


def make_changes(sandbox: LocalSandbox, k: int) -> None:
    gateway = StripeGateway(Settings(), api_base=sandbox.base_url)
    for n in range(k):
        request = CreateIntentRequest(10_000 + n, "automatic", f"bench {n}", (), "http://localhost:8501/return")
        gateway.create_alma_intent(request, submission_idempotency_key("bench", str(n), at=sandbox.now()))


def overview_analytics(frame: Any, now: int) -> None:
    period = analytics.period_bounds("30 d", now)
    shown = analytics.filter_intents(frame, period=period)
    analytics.kpis(shown)
    analytics.status_counts(shown)
    analytics.daily_by_status(shown)
    analytics.recent_failures(shown)


def analytics_store(source: IntentStore, size: int, path: Path) -> IntentStore:
    """A store of `size` intents made of the synced ones, renamed and spread over the last 90 days."""
    originals = source.all_intents()
    store = IntentStore(path, AUTH_WINDOW)
    newest = max(i.created for i in originals)
    batch: list[AlmaIntent] = []
    for n in range(size):
        original = originals[n % len(originals)]
        created = newest - (n * 7_777) % (LOOKBACK_DAYS * DAY_SECONDS)
        batch.append(replace(original, id=f"{original.id}_{n}", created=created))
        if len(batch) == 1_000:
            store.upsert_intents(batch)
            batch = []
    store.upsert_intents(batch)
    return store


def best_of(action: Callable[[], Any]) -> float:
    return min(timed(action)[1] for _ in range(ANALYTICS_REPEATS))


def ratio(naive: float, ours: float) -> str:
    return f"{naive / ours:,.0f}×" if ours else "∞"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="intents seeded in the sandbox")
    parser.add_argument("--k", type=int, default=100, help="changes before the second refresh")
    parser.add_argument("--child-first-sync", nargs=2, metavar=("BASE_URL", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_first_sync:
        child_first_sync(args.child_first_sync[0], Path(args.child_first_sync[1]))
        return

    with tempfile.TemporaryDirectory() as tmp, LocalSandbox.start(timeout=600) as sandbox:
        _, seed_seconds = timed(lambda: sandbox.reset(seed_demo=args.n))
        db = Path(tmp) / "bench.sqlite3"
        before = sandbox.request_count()
        child = subprocess.run(
            [sys.executable, __file__, "--child-first-sync", sandbox.base_url, str(db)],
            check=True,
            capture_output=True,
            text=True,
        )
        first = json.loads(child.stdout.strip().splitlines()[-1])
        first_requests = sandbox.request_count() - before

        sync = build_sync(sandbox.base_url, db)
        rows: list[tuple[str, str, str, str, str]] = []
        first_target = math.ceil(args.n / 100) + 3
        rows.append(
            (
                f"first sync, N={args.n:,}",
                f"{first_requests:,}",
                f"{first['seconds']:.2f}",
                f"{first['peak_rss_mb']:.0f} MB",
                f"≤ {first_target:,} req {_ok(first_requests <= first_target)}",
            )
        )
        for k in (0, args.k):
            if k:
                make_changes(sandbox, k)
            result, ours_requests, ours_seconds = counted(sandbox, sync.sync_once)
            _, naive_requests, naive_seconds = counted(sandbox, lambda: naive_relist(sandbox))
            target = math.ceil(k / 100) + 2
            rows.append(
                (
                    f"refresh k={k}: ours ({result.events_applied} events)",
                    f"{ours_requests}",
                    f"{ours_seconds:.3f}",
                    "",
                    f"≤ {target} req {_ok(ours_requests <= target)}",
                )
            )
            rows.append((f"refresh k={k}: naive re-list", f"{naive_requests:,}", f"{naive_seconds:.2f}", "", ""))
            rows.append(
                (
                    f"refresh k={k}: naive / ours",
                    ratio(naive_requests, ours_requests),
                    ratio(naive_seconds, ours_seconds),
                    "",
                    "",
                )
            )

        timings = {}
        for size in ANALYTICS_SIZES:
            store = analytics_store(sync.store, size, Path(tmp) / f"analytics_{size}.sqlite3")
            frame = store.intents_frame()
            now = int(frame["created"].max())
            timings[size] = (best_of(store.intents_frame), best_of(partial(overview_analytics, frame, now)))
            rows.append(
                (
                    f"Overview at {size:,} stored: read / analytics",
                    "",
                    f"{timings[size][0]:.3f} / {timings[size][1]:.3f}",
                    "",
                    "",
                )
            )
            store.close()
        small, large = ANALYTICS_SIZES
        rows.append(
            (
                f"Overview {large // 1000}k / {small // 1000}k: read / analytics",
                "",
                f"{ratio(timings[large][0], timings[small][0])} / {ratio(timings[large][1], timings[small][1])}",
                "",
                "",
            )
        )

    print(f"sandbox seeded with {args.n:,} intents in {seed_seconds:.1f} s; lookback {LOOKBACK_DAYS} days\n")
    header = ("step", "requests", "seconds", "peak RSS", "target")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


if __name__ == "__main__":
    main()
