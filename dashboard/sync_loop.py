"""One thread per process keeps the store fresh for every session of the app (embedded sync); in worker mode
WorkerSyncs stands in its place and only reads.

Pages never sync themselves: they ask the loop for a sync that starts after their request and wait for it, so
many viewers cost Stripe what one costs. Streamlit-free: the UI glue holds one loop per process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from dashboard.alerting import AlertService
from dashboard.clock import Clock
from dashboard.gateway import GatewayError
from dashboard.store import IntentStore
from dashboard.sync import AlmaSync, SyncResult

log = logging.getLogger(__name__)

# How long a page waits for a sync it asked for (after a write, or "Sync now") before drawing anyway.
SYNC_WAIT_SECONDS = 15.0
# How often a worker-mode dashboard looks whether the worker's data went stale (one row read).
STALE_CHECK_SECONDS = 60.0


@dataclass(frozen=True)
class SyncLoopStatus:
    """What the sidebar shows about syncing, read under the loop's lock."""

    attempts_finished: int
    progress: tuple[int, int | None] | None  # (done, estimated total) while a sync reports progress
    last_result: SyncResult | None
    last_error: str | None  # "code: message" of the last attempt, None once one succeeds again


class SyncLoop:
    """One thread per process keeps the store fresh for every session. The store has a single writer, so
    pages never sync themselves: they ask this loop for a sync that starts after their request and wait."""

    def __init__(self, sync: AlmaSync, interval_seconds: int) -> None:
        self._sync = sync
        self._interval = interval_seconds
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._started = 0
        self._finished = 0
        self._finished_at_monotonic: float | None = None
        self._progress: tuple[int, int | None] | None = None
        self._last_result: SyncResult | None = None
        self._last_error: str | None = None
        self._generation = 0  # bumped by every sync that changed the store; keys the frame cache
        self._thread = threading.Thread(target=self._run, name="alma-ops-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._attempt()
            # Cleared only after waking, so a request made during an attempt still gets its own attempt.
            if self._wake.wait(self._interval):
                self._wake.clear()

    def _attempt(self) -> None:
        with self._changed:
            self._started += 1
        result: SyncResult | None = None
        error: str | None = None
        try:
            result = self._sync.sync_once(progress=self._record_progress)
        except GatewayError as exc:
            error = str(exc)
        except Exception as exc:  # one bad sync must not end syncing for every viewer
            log.exception("sync attempt failed")
            error = f"{type(exc).__name__}: the sync failed; see the server log."
        with self._changed:
            self._finished += 1
            self._finished_at_monotonic = time.monotonic()
            self._progress = None
            if result is not None:
                self._last_result, self._last_error = result, None
                if result.intents_written or result.events_applied or self._generation == 0:
                    self._generation += 1
            else:
                self._last_error = error
            self._changed.notify_all()

    def _record_progress(self, done: int, total: int | None) -> None:
        with self._changed:
            self._progress = (done, total)

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    def status(self) -> SyncLoopStatus:
        with self._changed:
            return SyncLoopStatus(self._finished, self._progress, self._last_result, self._last_error)

    def sync_now(self, timeout: float = SYNC_WAIT_SECONDS) -> bool:
        """Wait for a sync that starts after this call; False if it has not finished within `timeout`."""
        with self._changed:
            target = self._started + 1
            self._wake.set()
            return self._changed.wait_for(lambda: self._finished >= target, timeout)

    def refresh(self, max_age_seconds: float) -> None:
        """Ask for a sync unless one finished less than `max_age_seconds` ago, without waiting for it: a page
        draws what is stored now and the new data on its next tick, so a failing API never blanks it. Many
        viewers polling the same page cost Stripe one refresh per interval, not one each."""
        with self._changed:
            finished_at = self._finished_at_monotonic
        if finished_at is None or time.monotonic() - finished_at >= max_age_seconds:
            self._wake.set()

    def wait_first(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._finished >= 1, timeout)

    def check_data_stale(self, alerts: AlertService, clock: Clock) -> None:
        """Nothing to do: this process's sync judges it after every attempt, failed ones included."""

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=SYNC_WAIT_SECONDS)


class WorkerSyncs:
    """ALMA_OPS_SYNC=worker: `python -m dashboard.sync --every N` is the store's one writer and this process
    only reads. Stands where the SyncLoop would, so pages ask the same questions; nothing here calls the
    gateway or writes the store. A change is noticed from the store's version row, whichever process made it."""

    def __init__(self, store: IntentStore) -> None:
        self._store = store
        self._stale_checked_at: float | None = None
        self._stale_lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._store.version()

    def status(self) -> SyncLoopStatus:
        writer = self._store.writer_status()
        ended = writer.last_success_at is not None or writer.last_error_at is not None  # not just started
        return SyncLoopStatus(int(ended), None, None, writer.last_error)

    def sync_now(self, timeout: float = SYNC_WAIT_SECONDS) -> bool:
        """The worker syncs on its own schedule: a write here shows once its next sync has run."""
        return False

    def refresh(self, max_age_seconds: float) -> None:
        """Nothing to ask: the worker keeps the store fresh."""

    def wait_first(self, timeout: float) -> bool:
        return True  # never hold a page for a sync this process does not run

    def stop(self) -> None:
        """No thread to stop."""

    def check_data_stale(self, alerts: AlertService, clock: Clock) -> None:
        """When the worker stops syncing, nobody is left to say so but the dashboards: at most once a minute per
        process, raise "data stale" from the store's last success (the rule's row makes it one notification,
        whichever dashboard sees it first). Drawing never waits on it failing."""
        with self._stale_lock:
            checked = self._stale_checked_at
            if checked is not None and time.monotonic() - checked < STALE_CHECK_SECONDS:
                return
            self._stale_checked_at = time.monotonic()
        try:
            now = clock.now()
        except OSError:  # the worker's sandbox is down: its clock says nothing, the next check tries again
            return
        alerts.check_data_stale(now)
