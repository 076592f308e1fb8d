"""What each page costs as history grows (issue 10 item 8), against the whole-frame way, in one run.

A store is filled with N Alma intents (default 1,000 and 100,000; `--sizes 1000,100000,1000000`): the sandbox's
demo intents are synced once, then copied under new ids and spread over the lookback window (a bulk loader: no
Stripe requests). The PostgreSQL store is the SQLite one moved over with `python -m dashboard.store.copy`.

  pages        every page's full script (AppTest from streamlit_app.py, a dashboard with ALMA_OPS_SYNC=worker,
               so nothing syncs while it draws): the warm rerun, and the first run after one new intent
               reached the store (what each dashboard pays for every change the worker writes).
  whole frame  the old way: every stored intent read into pandas, then the Overview's computations on it;
               warm = the computations on the frame held in memory, after change = the read and them again.
  timings      best of 3 (three changes for the after-change run): the machine is shared.
  peak RSS     each (database, size, approach) runs in a child process, so its peak memory is its own.

Targets: at the largest size against 1k, each page's warm and after-change run within 2x, memory within 1.5x.
Needs PostgreSQL's initdb/postgres (Debian's postgresql package, as `make test` installs); `--sqlite-only` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
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

from dashboard import analytics
from dashboard.domain import AlmaIntent
from dashboard.gateway import StripeGateway
from dashboard.local_sandbox import LocalSandbox
from dashboard.settings import AUTH_WINDOW_SECONDS, Settings
from dashboard.store import IntentStore
from dashboard.store.copy import copy_store
from dashboard.sync import DAY_SECONDS, AlmaSync

LOOKBACK_DAYS = 90
DEMO_INTENTS = 300
BATCH = 2_000
PAGES = {
    "Overview": "app_pages/overview.py",
    "Intents": "app_pages/intents.py",
    "Expiry watch": "app_pages/expiry_watch.py",
    "Test lab": "app_pages/lab.py",
}
APP_TIMEOUT = 1_800
REPEATS = 3  # best of: the machine is shared, the minimum is the cost without the neighbours


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(template: list[AlmaIntent], size: int, path: Path, now: int) -> None:
    """`size` intents made of the synced ones, under new ids, spread over the lookback window."""
    store = IntentStore(path, AUTH_WINDOW_SECONDS)
    batch: list[AlmaIntent] = []
    for n in range(size):
        original = template[n % len(template)]
        created = now - 60 - (n * 7_777) % (LOOKBACK_DAYS * DAY_SECONDS)
        batch.append(moved(original, f"{original.id}_{n}", created - original.created))
        if len(batch) == BATCH:
            store.upsert_intents(batch)
            batch = []
    store.upsert_intents(batch)
    store.close()


def moved(intent: AlmaIntent, new_id: str, by: int) -> AlmaIntent:
    """The intent under a new id, with every instant of its life moved by `by` seconds: a copy made 80 days
    ago also failed, was authorised or was canceled 80 days ago (so "expired in the last 24 h" stays small)."""
    instants = ("created", "authorized_at", "canceled_at", "sent_to_alma_at", "updated_at")
    shifted = {name: value + by for name in instants if (value := getattr(intent, name)) is not None}
    return replace(intent, id=new_id, **shifted)


def one_change(store: IntentStore, template: AlmaIntent, n: int, now: int) -> None:
    store.upsert_intents([moved(template, f"{template.id}_new{n}", now - 30 - template.created)])


# -- the child: one approach on one store ---------------------------------------------------------------


def child_pages(db: str, now: int) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    writer = IntentStore(db, AUTH_WINDOW_SECONDS)  # plays the worker's part: one new intent per change
    template = writer.get_intents([writer.intents_frame(created_gte=now - 3 * DAY_SECONDS, limit=1)["id"].iloc[0]])
    results: dict[str, Any] = {}
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=APP_TIMEOUT).run()
    for n, (name, page) in enumerate(PAGES.items()):
        at.switch_page(page)
        at.run()  # the first draw fills the caches
        warm = min(timed(at.run) for _ in range(REPEATS))
        changed = []
        for repeat in range(REPEATS):
            one_change(writer, next(iter(template.values())), n * REPEATS + repeat, now)
            changed.append(timed(at.run))
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception}")
        results[name] = (warm, min(changed))
    writer.close()
    return {"runs": results, "rss_mb": peak_rss_mb()}


def overview_analytics(frame: Any, now: int) -> None:
    shown = analytics.filter_intents(frame, period=analytics.period_bounds("30 d", now))
    analytics.kpis(shown)
    analytics.status_counts(shown)
    analytics.daily_by_status(shown)
    analytics.recent_failures(shown)


def child_frame(db: str, now: int) -> dict[str, Any]:
    store = IntentStore(db, AUTH_WINDOW_SECONDS)
    frame = store.intents_frame()
    overview_analytics(frame, now)
    warm = min(timed(lambda: overview_analytics(frame, now)) for _ in range(REPEATS))
    changed = min(timed(lambda: overview_analytics(store.intents_frame(), now)) for _ in range(REPEATS))
    store.close()
    return {"runs": {"Overview": (warm, changed)}, "rss_mb": peak_rss_mb()}


def run_child(approach: str, db: str, sandbox_url: str, now: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "ALMA_OPS_"))}
    env.update(ALMA_OPS_DB=db, ALMA_OPS_SYNC="worker", ALMA_OPS_SANDBOX_URL=sandbox_url)
    env.update(ALMA_OPS_PUBLIC_URL="http://localhost:8501", ALMA_OPS_LOOKBACK_DAYS=str(LOOKBACK_DAYS))
    command = [sys.executable, __file__, "--child", approach, "--db", db, "--now", str(now)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{approach} on {db}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent: fill the stores, run the children, print side by side -----------------------------------


def ratio(large: float, small: float) -> str:
    return f"{large / small:.1f}x" if small > 0 else "—"


def report(results: dict[tuple[str, int, str], dict[str, Any]], sizes: list[int], databases: list[str]) -> None:
    small, large = sizes[0], sizes[-1]
    header = f"{'database':<11}{'approach':<13}{'page':<14}" + "".join(
        f"{f'{size:,} warm / change (s)':>30}" for size in sizes
    )
    print(header + f"{f'{large:,} / {small:,}':>22}")
    for db in databases:
        for approach in ("pages", "whole frame"):
            names = results[(db, small, approach)]["runs"].keys()
            for name in names:
                cells = [results[(db, size, approach)]["runs"][name] for size in sizes]
                line = f"{db:<11}{approach:<13}{name:<14}" + "".join(f"{f'{w:.3f} / {c:.3f}':>30}" for w, c in cells)
                print(line + f"{ratio(cells[-1][0], cells[0][0]) + ' / ' + ratio(cells[-1][1], cells[0][1]):>22}")
            rss = [results[(db, size, approach)]["rss_mb"] for size in sizes]
            line = f"{db:<11}{approach:<13}{'peak RSS MB':<14}" + "".join(f"{f'{r:.0f}':>30}" for r in rss)
            print(line + f"{ratio(rss[-1], rss[0]):>22}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="stored intents, comma separated")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--child", choices=("pages", "frame"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (child_pages if args.child == "pages" else child_frame)(args.db, args.now)
        print(json.dumps(result))
        return 0

    sizes = sorted(int(size) for size in args.sizes.split(","))
    databases = ["sqlite"] if args.sqlite_only else ["sqlite", "postgresql"]
    results: dict[tuple[str, int, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalSandbox.start(seed_demo=DEMO_INTENTS) as sandbox:
        postgres = None
        if "postgresql" in databases:
            from tests.postgres_server import PostgresServer

            postgres = PostgresServer()
        try:
            template_store = IntentStore(Path(tmp) / "template.sqlite3", AUTH_WINDOW_SECONDS)
            sync = AlmaSync(
                StripeGateway(Settings(), api_base=sandbox.base_url),
                template_store,
                sandbox,
                lookback_days=LOOKBACK_DAYS,
            )
            sync.sync_once()
            template, now = template_store.all_intents(), sandbox.now()
            template_store.close()
            for size in sizes:
                sqlite_file = Path(tmp) / f"store_{size}.sqlite3"
                seconds = timed(partial(fill, template, size, sqlite_file, now))
                print(f"filled {size:,} intents in {seconds:.0f} s", file=sys.stderr, flush=True)
                for db in databases:
                    location = str(sqlite_file)
                    if db == "postgresql":
                        location = postgres.create_database()  # type: ignore[union-attr]
                        copy_store(str(sqlite_file), location)
                    for approach, child in (("pages", "pages"), ("whole frame", "frame")):
                        results[(db, size, approach)] = run_child(child, location, sandbox.base_url, now)
                        print(f"  {db} {size:,} {approach} done", file=sys.stderr, flush=True)
        finally:
            if postgres is not None:
                postgres.stop()
    report(results, sizes, databases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
