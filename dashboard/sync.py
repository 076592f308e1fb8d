"""Keeps the local store equal to Stripe with as few requests as possible.

One writer: every sync first takes the store's writer lock; a second writer (another worker, a dashboard in
embedded mode) finds it held, says so and skips that round.

First sync: note the newest event (the cursor) BEFORE listing, then list the lookback window page by page into
the store, saving the listing's place with every page: a killed or failed listing resumes where it stopped.
Refresh: ask /v1/events for what came after the cursor event, plus one page of the few seconds before it (an
event may become listable late), skip events already applied, apply the rest in Stripe's order; state only
moves forward (an intent's version is its last event's time and stream position). Stripe keeps events 30 days:
an older cursor means a windowed relist; a cursor event that no longer exists (an account or sandbox reset)
too, noted for the sidebar. A reconcile relists the window and heals what differs.

`python -m dashboard.sync --once | --every SECONDS | --reconcile` runs the same sync outside Streamlit.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dashboard.alerting import DATA_STALE_ONLY, AlertService
from dashboard.clock import Clock
from dashboard.domain import (
    EXPIRED_CODE,
    AlmaIntent,
    BalanceTransaction,
    Refund,
    auth_window_end,
    charge_balance_transaction,
    is_alma,
)
from dashboard.gateway import REQUIRES_ACTION_EVENT, GatewayError, NotFoundError, StripeEvent, StripeGateway
from dashboard.settings import SettingsError, load_settings
from dashboard.store import IntentStore, ListingProgress, StoredEvent, StoredIntent, StoreError, SyncState
from dashboard.wiring import Services, build_services

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# Events can become listable a moment after their `created` second; re-asking a few seconds is cheap.
EVENT_OVERLAP_SECONDS = 5
EVENT_RETENTION_SECONDS = 30 * DAY_SECONDS
# Re-list a little before Stripe's retention edge rather than risk asking for events already gone.
RETENTION_SAFETY_SECONDS = 3600
# Our clock and Stripe's may disagree a little; an idle cursor is only moved up to this far behind our now.
CLOCK_SKEW_ALLOWANCE_SECONDS = 300

# A worker relists its window this often to heal any drift (python -m dashboard.sync --every).
RECONCILE_EVERY_SECONDS = DAY_SECONDS

ListingKind = Literal["full", "relist", "reconcile"]
SyncKind = Literal["full", "refresh", "relist", "reconcile", "skipped"]
# (intents listed so far, total): the total is given only once known (at the end); a listing cannot know it
# before, and store.listing_progress() says honestly how far back in time it has got.
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class SyncResult:
    kind: SyncKind
    intents_written: int
    events_applied: int
    requests: int
    # The sync's date on the injected clock, read once as it starts (the store is at least that fresh); the
    # same value becomes store.last_synced_at().
    finished_at: int
    removed: int = 0  # a listing's intents that Stripe no longer has
    note: str | None = None  # why a sync was skipped, or that the cursor was lost

    def summary(self) -> str:
        if self.kind == "skipped":
            return f"skipped: {self.note}"
        text = (
            f"{self.kind}: {self.intents_written} intents written, {self.events_applied} events, {self.requests}"
            " requests"
        )
        if self.kind in ("relist", "reconcile"):
            text += f", {self.intents_written + self.removed} rows healed ({self.removed} removed)"
        return text + (f" ({self.note})" if self.note else "")


class CursorLost(Exception):
    """The cursor event no longer exists at Stripe (events are kept 30 days; an account or sandbox reset)."""


def carry_over(previous: AlmaIntent, current: AlmaIntent) -> AlmaIntent:
    """Keep what an event's unexpanded object cannot say but an earlier state already knew: the charge
    details (same charge), the payment method type (same method), when the customer was sent to Alma."""
    merged = replace(
        current,
        sent_to_alma_at=current.sent_to_alma_at or previous.sent_to_alma_at,
        customer_name=current.customer_name or previous.customer_name,
        customer_email=current.customer_email or previous.customer_email,
    )
    same_charge = current.latest_charge_id is not None and current.latest_charge_id == previous.latest_charge_id
    if current.authorized_at is None and same_charge:
        merged = replace(
            merged,
            charge_method_type=previous.charge_method_type,
            installments=previous.installments,
            alma_transaction_id=previous.alma_transaction_id,
            authorized_at=previous.authorized_at,
        )
    if current.payment_method_type is None and current.payment_method_id == previous.payment_method_id:
        merged = replace(merged, payment_method_type=previous.payment_method_type)
    return merged


def _with_inferred_method(intent: AlmaIntent) -> AlmaIntent:
    """The attached payment method's type when an unexpanded object still tells it: an intent that allows
    only Alma, or one whose latest charge was paid with the method still attached."""
    if intent.payment_method_id is None or intent.payment_method_type is not None:
        return intent
    if intent.payment_method_types == ("alma",):
        return replace(intent, payment_method_type="alma")
    if intent.charge_method_type is not None:
        return replace(intent, payment_method_type=intent.charge_method_type)
    return intent


def state_after_event(
    previous: StoredIntent | None, event: StripeEvent, sequence: int
) -> tuple[AlmaIntent, int | None] | None:
    """The intent's state and version once `event` (at stream position `sequence`) is applied; None when
    the event says nothing new (a charge of an intent we do not know, or an older event that adds no late
    fact). An event older than the state held only adds what cannot go stale: when the customer was sent
    to Alma, and the details of the same charge. So the same events in any order give the same state."""
    if previous is not None and (event.created, sequence) <= _version(previous):
        late = _late_facts(previous.intent, event)
        return (late, previous.event_sequence) if late != previous.intent else None
    before = previous.intent if previous is not None else None
    if event.object.get("object") == "refund":
        return None  # refunds are kept apart (store.save_refunds); the intent's state is the charge's
    if event.type.startswith("payment_intent."):
        current = AlmaIntent.from_stripe(event.object)
        if before is not None:
            current = carry_over(before, current)
        if event.type == REQUIRES_ACTION_EVENT:
            current = replace(current, sent_to_alma_at=event.created)
    elif before is not None:
        current = before.with_charge(event.object)
    else:
        return None
    return replace(_with_inferred_method(current), updated_at=event.created), sequence


def _version(stored: StoredIntent) -> tuple[int, int]:
    updated_at = stored.intent.updated_at
    return (-1 if updated_at is None else updated_at, -1 if stored.event_sequence is None else stored.event_sequence)


def _late_facts(intent: AlmaIntent, event: StripeEvent) -> AlmaIntent:
    if event.type == REQUIRES_ACTION_EVENT and event.created > (intent.sent_to_alma_at or 0):
        return replace(intent, sent_to_alma_at=event.created)  # late, but still says when it was sent
    if event.type.startswith("charge.") and event.object_id == intent.latest_charge_id and intent.authorized_at is None:
        return _with_inferred_method(intent.with_charge(event.object))
    return intent


def listed_state(
    listed: AlmaIntent, stored: StoredIntent | None, auth_window_seconds: int, listed_at: int
) -> StoredIntent:
    """A listed intent, keeping what the store learned from events. Its updated_at is the latest change
    time the listing itself shows, never earlier than the stored one: events older than that are stale.
    An expired attempt ended exactly one window after the customer was sent to Alma. A stored state from an
    event newer than the listing (listed_at: when this listing started) is kept as it is."""
    previous = stored.intent if stored is not None else None
    if previous is not None and previous.updated_at is not None and previous.updated_at > listed_at:
        return stored  # type: ignore[return-value]
    current = carry_over(previous, listed) if previous is not None else listed
    expired = current.last_error is not None and current.last_error.code == EXPIRED_CODE
    expired_at = auth_window_end(current.sent_to_alma_at, auth_window_seconds) if expired else None
    known_times = (
        listed.created,
        listed.authorized_at,
        listed.canceled_at,
        current.sent_to_alma_at,
        expired_at,
        previous.updated_at if previous else None,
    )
    updated_at = max(t for t in known_times if t is not None)
    # Same time as the stored version: keep its stream position, so the listing is not taken as older.
    sequence = stored.event_sequence if stored is not None and previous.updated_at == updated_at else None  # type: ignore[union-attr]
    return StoredIntent(replace(current, updated_at=updated_at), sequence)


class AlmaSync:
    def __init__(
        self,
        gateway: StripeGateway,
        store: IntentStore,
        clock: Clock,
        *,
        lookback_days: int = 90,
        reconcile_every_seconds: int | None = None,
        alerts: AlertService | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.clock = clock
        self.lookback_days = lookback_days
        self.reconcile_every_seconds = reconcile_every_seconds  # None: only on request (--reconcile)
        self._lock = threading.Lock()  # one sync at a time per process, whoever asks
        self.alerts = alerts  # evaluated by this writer after each sync (None: no alerting, as in most tests)

    @classmethod
    def for_services(cls, services: Services, *, reconcile_every_seconds: int | None = None) -> AlmaSync:
        return cls(
            services.gateway,
            services.store,
            services.clock,
            lookback_days=services.settings.lookback_days,
            reconcile_every_seconds=reconcile_every_seconds,
            alerts=services.alerts,
        )

    def sync_once(self, progress: Progress | None = None) -> SyncResult:
        """Go on with an interrupted listing, else a first sync when the store has no cursor, else a refresh
        (or a relist when the cursor is too old or gone, or a reconcile when one is due)."""
        return self._as_the_writer(lambda now: self._refresh_or_list(progress, now))

    def reconcile(self, progress: Progress | None = None) -> SyncResult:
        """Relist the lookback window and heal every row that differs (a first sync when the store is empty)."""
        return self._as_the_writer(lambda now: self._list_window(self._listing_kind("reconcile"), progress, now))

    def _as_the_writer(self, run: Callable[[int], SyncResult]) -> SyncResult:
        """Run a sync holding the store's writer lock, recording the attempt and its outcome for the sidebar;
        skipped when another writer holds the lock. A failure keeps what was saved and is raised."""
        with self._lock:
            # One reading of the injected clock (the sandbox's in local mode) dates the whole sync, so the
            # sidebar's "last sync" agrees with the pages' "now".
            now = self.clock.now()
            if not self.store.acquire_writer():
                holder = self.store.current_writer() or "another writer"
                log.info("sync skipped: %s holds the store's writer lock", holder)
                return SyncResult("skipped", 0, 0, 0, now, note=f"{holder} is syncing this store")
            try:
                self.store.record_attempt(now)
                result = run(now)
                self.store.record_attempt(now, success=True)
                if self.alerts is not None:  # still the writer: one evaluator, whatever the dashboards
                    self.alerts.evaluate(now)
                return result
            except Exception as error:
                self.store.record_attempt(now, error=f"{type(error).__name__}: {error}")
                if self.alerts is not None:  # the figures are not fresh; only whether they are is known
                    self.alerts.evaluate(now, DATA_STALE_ONLY)
                raise
            finally:
                self.store.release_writer()

    def _listing_kind(self, wanted: ListingKind) -> ListingKind:
        return wanted if self.store.sync_state() is not None else "full"

    def _refresh_or_list(self, progress: Progress | None, now: int) -> SyncResult:
        if (pending := self.store.listing_progress()) is not None:
            return self._list_window(pending.kind, progress, now, pending)  # type: ignore[arg-type]
        state = self.store.sync_state()
        if state is None:
            return self._list_window("full", progress, now)
        if now - state.cursor_created > EVENT_RETENTION_SECONDS - RETENTION_SAFETY_SECONDS:
            return self._list_window("relist", progress, now)
        if self._reconcile_due(now):
            return self._list_window("reconcile", progress, now)
        try:
            return self._refresh(state, now)
        except CursorLost:
            log.warning(
                "the cursor event %s no longer exists at Stripe (events are kept 30 days; an account or sandbox"
                " reset): relisting the last %d days",
                state.cursor_event_id,
                self.lookback_days,
            )
            self.store.record_cursor_lost(now)
            return replace(self._list_window("relist", progress, now), note="cursor event lost: window relisted")

    def _reconcile_due(self, now: int) -> bool:
        if self.reconcile_every_seconds is None:
            return False
        last = self.store.writer_status().last_reconcile_at
        return last is None or now - last >= self.reconcile_every_seconds

    def _result(self, kind: SyncKind, written: int, applied: int, requests_before: int, synced_at: int) -> SyncResult:
        return SyncResult(kind, written, applied, self.gateway.requests_made - requests_before, synced_at)

    # -- listing (first sync, relist, reconcile) -------------------------------------------------------------

    def _start_listing(self, kind: ListingKind, now: int) -> ListingProgress:
        """Take the cursor BEFORE listing (whatever happens meanwhile is in the events after it) and save the
        listing's start, so a killed listing resumes with the same cursor and window."""
        recent = self.gateway.recent_events()
        latest = recent[-1] if recent else None
        cursor_id, cursor_created = _young_cursor(latest.id if latest else None, latest.created if latest else 0, now)
        started = ListingProgress(
            run=secrets.token_hex(8),
            kind=kind,
            window_start=now - self.lookback_days * DAY_SECONDS,
            started_at=now,
            cursor_event_id=cursor_id,
            cursor_created=cursor_created,
            starting_after=None,
            oldest_created=None,
            listed=0,
            pages=0,
            changed=0,
        )
        # The listing will show what these did; marking them seen keeps the first refresh from redoing them.
        reflected = [event for event in recent if event.created >= cursor_created - EVENT_OVERLAP_SECONDS]
        self.store.save(events=_stored_events(reflected), progress=started)
        return started

    def _list_window(
        self, kind: ListingKind, progress: Progress | None, now: int, resume: ListingProgress | None = None
    ) -> SyncResult:
        requests_before = self.gateway.requests_made
        if resume is None:
            place = self._start_listing(kind, now)
        else:
            place = resume
            log.info("resuming the %s listing after %d pages (%d intents)", kind, place.pages, place.listed)
        window = self.store.auth_window_seconds
        written = 0
        for page in self.gateway.list_intents(place.window_start, starting_after=place.starting_after):
            alma = [intent for intent in page if is_alma(intent)]
            stored = self.store.get_stored(intent.id for intent in alma)
            states = [listed_state(i, stored.get(i.id), window, place.started_at) for i in alma]
            oldest = min(intent.created for intent in page)
            place = replace(
                place,
                starting_after=page[-1].id,
                oldest_created=oldest if place.oldest_created is None else min(place.oldest_created, oldest),
                listed=place.listed + len(page),
                pages=place.pages + 1,
            )
            moves = [move for move in map(charge_balance_transaction, (i.raw for i in alma)) if move is not None]
            saved = self.store.save(states, progress=place, transactions=moves)
            written += saved
            place = replace(place, changed=place.changed + saved)
            if progress:
                progress(place.listed, None)
        found, refund_moves = self.gateway.list_refunds(place.window_start)
        self.store.save(refund_states=found, transactions=refund_moves)
        state = SyncState(place.cursor_event_id, place.cursor_created, now, place.window_start)
        removed = self.store.finish_listing(place, state)
        if removed:
            log.warning("%d stored intents are no longer listed by Stripe: removed", removed)
        self.store.record_reconcile(now, 0 if kind == "full" else written + removed)
        if progress:
            progress(place.listed, place.listed)
        return replace(self._result(kind, written, 0, requests_before, now), removed=removed)

    # -- refresh from events ---------------------------------------------------------------------------------

    def _refresh(self, state: SyncState, now: int) -> SyncResult:
        requests_before = self.gateway.requests_made
        events, newest = self._events_since(state)  # read after `now`: the store is at least that fresh
        cursor = _young_cursor(
            *((newest.id, newest.created) if newest else (state.cursor_event_id, state.cursor_created)), now
        )
        new_state = replace(state, cursor_event_id=cursor[0], cursor_created=cursor[1], last_synced_at=now)
        # Fees have no events: when money moved (a charge or a refund), one listing of the balance since the
        # cursor (a page, whatever the intents); an idle refresh asks nothing more. Only new events count: the
        # overlap re-lists known ones, and a charge already applied moved its money last time.
        known = self.store.known_event_ids(event.id for event in events)
        moved = any(_moves_money(event) for event in events if event.id not in known)
        since = state.cursor_created - EVENT_OVERLAP_SECONDS
        moves = self.gateway.list_balance_transactions(since) if moved else []
        written, applied = self.apply_events(events, state=new_state, transactions=moves)
        return self._result("refresh", written, applied, requests_before, now)

    def _events_since(self, state: SyncState) -> tuple[list[StripeEvent], StripeEvent | None]:
        """The events to apply (oldest first) and the newest new one, the next cursor."""
        since = state.cursor_created - EVENT_OVERLAP_SECONDS
        if state.cursor_event_id is None:  # an idle stretch: the cursor is a time
            events = self.gateway.list_events(since)
            return events, (events[-1] if events and events[-1].created >= state.cursor_created else None)
        try:
            fresh = self.gateway.events_after(state.cursor_event_id)
        except NotFoundError:
            raise CursorLost(state.cursor_event_id) from None
        # Exactly what came after the cursor, plus one page of overlap for any event that became listable a
        # moment late just before it: a burst long past costs nothing more.
        overlap = self.gateway.recent_events(created_gte=since, created_lte=state.cursor_created)
        return overlap + fresh, (fresh[-1] if fresh else None)

    def apply_events(
        self,
        events: Sequence[StripeEvent],
        *,
        state: SyncState | None = None,
        transactions: Sequence[BalanceTransaction] = (),
    ) -> tuple[int, int]:
        """Apply the events not seen before in Stripe's order (time, then the listing's order within a
        second), in one transaction with the new sync state. Returns (intents written, events applied)."""
        unique: dict[str, StripeEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)
        listing = sorted(unique.values(), key=lambda event: event.created)  # stable: keeps same-second order
        # Each event's stream position, as the store keeps it: a late-listed one slots among stored ones.
        sequence = {e.id: e.sequence for e in self.store.place_events(_stored_events(listing))}
        known = self.store.known_event_ids(unique)
        ordered = sorted((e for e in listing if e.id not in known), key=lambda e: (e.created, sequence[e.id]))
        intent_ids = {event.intent_id for event in ordered if event.intent_id}
        # Non-Alma intents stay in memory for this batch: a later event may reveal Alma (multi-method intents).
        stored = self.store.get_stored(intent_ids)
        states: dict[str, StoredIntent] = dict(stored)
        changed: set[str] = set()
        for event in ordered:
            if event.intent_id is None:
                continue
            previous = states.get(event.intent_id)
            if previous is None and _is_alma_charge(event):
                # A charge of an intent never stored (created before the window, or a multi-method intent
                # whose choice of Alma this reveals): fetch that intent once.
                fetched = self.gateway.retrieve_intent(event.intent_id)
                after: tuple[AlmaIntent, int | None] | None = (
                    replace(fetched, updated_at=event.created),
                    sequence[event.id],
                )
            else:
                after = state_after_event(previous, event, sequence[event.id])
            if after is not None:
                states[event.intent_id] = StoredIntent(*after)
                changed.add(event.intent_id)
        updated = [
            states[i]
            for i in changed
            if is_alma(states[i].intent) and (i not in stored or _facts(states[i].intent) != _facts(stored[i].intent))
        ]
        # Known events go along so the new ones are stored in their place among them (store.save).
        written = self.store.save(
            updated,
            events=_stored_events(listing),
            state=state,
            refund_states=latest_refunds(ordered),
            transactions=transactions,
        )
        return written, len(ordered)


def _moves_money(event: StripeEvent) -> bool:
    """Does this event come with a new balance transaction? A charge captured (paid at once, or captured
    later), a refund made or failed; an authorisation held or released moves nothing."""
    if event.type in ("refund.created", "refund.failed"):
        return True
    return event.type in ("charge.succeeded", "charge.captured") and bool(event.object.get("captured"))


def latest_refunds(events: Iterable[StripeEvent]) -> list[Refund]:
    """Each refund as the newest of these events (oldest first) tells it; a settled one is never taken
    back to pending by an event that arrived late."""
    latest: dict[str, Refund] = {}
    for event in events:
        if event.object.get("object") != "refund":
            continue
        refund = Refund.from_stripe(event.object)
        if refund.status != "pending" or refund.id not in latest:
            latest[refund.id] = refund
    return list(latest.values())


def _young_cursor(event_id: str | None, created: int, now: int) -> tuple[str | None, int]:
    """The next cursor: the newest event, or, when nothing happened for a while, a time just short of now
    (so the next refresh never asks for a long-idle stretch again)."""
    floor = now - CLOCK_SKEW_ALLOWANCE_SECONDS
    return (event_id, created) if created >= floor else (None, floor)


def _facts(intent: AlmaIntent) -> AlmaIntent:
    """An event that only re-tells what the store already shows (say, one the listing already reflected) is
    no change: its time alone does not make the stored row newer."""
    return replace(intent, updated_at=None)


def _is_alma_charge(event: StripeEvent) -> bool:
    return event.type.startswith("charge.") and (event.object.get("payment_method_details") or {}).get("type") == "alma"


def _stored_events(events: Iterable[StripeEvent]) -> list[StoredEvent]:
    return [StoredEvent(e.id, e.type, e.created, e.intent_id) for e in events]


# -- command line -----------------------------------------------------------------------------------------


def _print_progress(done: int, total: int | None) -> None:
    if done % 1_000 == 0 or done == total:  # every ten pages is plenty for a log
        print(f"  listed {done:,} intents" + (" (all)" if done == total else " so far"), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.sync", description="Sync Alma intents into the store.")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", action="store_true", help="one sync, then exit")
    when.add_argument("--every", type=int, metavar="SECONDS", help="sync forever, pausing SECONDS between runs")
    when.add_argument("--reconcile", action="store_true", help="relist the lookback window, heal what differs")
    args = parser.parse_args(argv)
    if args.every is not None and args.every < 1:
        parser.error("--every takes a whole number of seconds, at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("stripe").setLevel(logging.WARNING)
    try:
        services = build_services(load_settings(os.environ), may_start_sandbox=False, writer_role="worker")
    except (SettingsError, StoreError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a supervisor's stop is a normal end, not a crash
    sync = AlmaSync.for_services(services, reconcile_every_seconds=RECONCILE_EVERY_SECONDS if args.every else None)
    settings, store = services.settings, services.store
    print(f"Alma Ops sync: {settings!r}, store {settings.db_location}, writer {store.writer_identity}", flush=True)
    try:
        while True:
            try:
                result = sync.reconcile(_print_progress) if args.reconcile else sync.sync_once(_print_progress)
                print(result.summary(), flush=True)
            except (GatewayError, OSError) as error:  # OSError: the sandbox clock did not answer
                print(f"sync failed (what was saved is kept): {error}", file=sys.stderr, flush=True)
                if args.every is None:
                    return 1
            if args.every is None:
                return 0
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
