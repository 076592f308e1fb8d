"""Keeps the local store equal to Stripe with as few requests as possible.

First sync: note the newest event (the cursor) BEFORE listing, then list the lookback window page by page into
the store. Refresh: ask /v1/events for what came after the cursor event, plus one page of the few seconds before
it (an event may become listable late), skip events already applied, apply the rest oldest first; an event
never overwrites a newer state of its intent. Stripe keeps events 30 days: an older cursor means a windowed
re-list instead.

`python -m dashboard.sync --once | --every SECONDS` runs the same sync outside Streamlit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dashboard.clock import Clock
from dashboard.domain import EXPIRED_CODE, AlmaIntent, auth_window_end, is_alma
from dashboard.gateway import REQUIRES_ACTION_EVENT, GatewayError, NotFoundError, StripeEvent, StripeGateway
from dashboard.settings import SettingsError, load_settings
from dashboard.store import IntentStore, StoredEvent, SyncState
from dashboard.wiring import Services, build_services

DAY_SECONDS = 86_400
# Events can become listable a moment after their `created` second; re-asking a few seconds is cheap.
EVENT_OVERLAP_SECONDS = 5
EVENT_RETENTION_SECONDS = 30 * DAY_SECONDS
# Re-list a little before Stripe's retention edge rather than risk asking for events already gone.
RETENTION_SAFETY_SECONDS = 3600
# Our clock and Stripe's may disagree a little; an idle cursor is only moved up to this far behind our now.
CLOCK_SKEW_ALLOWANCE_SECONDS = 300

SyncKind = Literal["full", "refresh", "relist"]
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


def carry_over(previous: AlmaIntent, current: AlmaIntent) -> AlmaIntent:
    """Keep what an event's unexpanded object cannot say but an earlier state already knew: the charge
    details (same charge), the payment method type (same method), when the customer was sent to Alma."""
    merged = replace(current, sent_to_alma_at=current.sent_to_alma_at or previous.sent_to_alma_at)
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


def state_after_event(previous: AlmaIntent | None, event: StripeEvent) -> AlmaIntent | None:
    """The intent's state once `event` is applied; None when the event says nothing new (it is older than
    the state we hold, or it is a charge of an intent we do not know)."""
    if previous is not None and previous.updated_at is not None and event.created < previous.updated_at:
        if event.type == REQUIRES_ACTION_EVENT and event.created > (previous.sent_to_alma_at or 0):
            return replace(previous, sent_to_alma_at=event.created)  # late, but still says when it was sent
        return None
    if event.type.startswith("payment_intent."):
        current = AlmaIntent.from_stripe(event.object)
        if previous is not None:
            current = carry_over(previous, current)
        if event.type == REQUIRES_ACTION_EVENT:
            current = replace(current, sent_to_alma_at=event.created)
    elif previous is not None:
        current = previous.with_charge(event.object)
    else:
        return None
    return replace(_with_inferred_method(current), updated_at=event.created)


def listed_state(listed: AlmaIntent, stored: AlmaIntent | None, auth_window_seconds: int) -> AlmaIntent:
    """A listed intent, keeping what the store learned from events. Its updated_at is the latest change
    time the listing itself shows, never earlier than the stored one: events older than that are stale.
    An expired attempt ended exactly one window after the customer was sent to Alma."""
    current = carry_over(stored, listed) if stored is not None else listed
    expired = current.last_error is not None and current.last_error.code == EXPIRED_CODE
    expired_at = auth_window_end(current.sent_to_alma_at, auth_window_seconds) if expired else None
    known_times = (
        listed.created,
        listed.authorized_at,
        listed.canceled_at,
        current.sent_to_alma_at,
        expired_at,
        stored.updated_at if stored else None,
    )
    return replace(current, updated_at=max(t for t in known_times if t is not None))


def _estimated_total(listed: int, oldest_created: int, now: int, window_start: int) -> int | None:
    """Extrapolate from the share of the window the newest-first listing has covered so far."""
    covered = now - oldest_created
    if listed == 0 or covered <= 0:
        return None
    return max(listed, round(listed * (now - window_start) / covered))


class AlmaSync:
    def __init__(
        self,
        gateway: StripeGateway,
        store: IntentStore,
        clock: Clock,
        *,
        lookback_days: int = 90,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.clock = clock
        self.lookback_days = lookback_days
        self._lock = threading.Lock()  # one sync at a time per process, whoever asks

    @classmethod
    def for_services(cls, services: Services) -> AlmaSync:
        return cls(services.gateway, services.store, services.clock, lookback_days=services.settings.lookback_days)

    def sync_once(self, progress: Progress | None = None) -> SyncResult:
        """First sync when the store has no cursor, else a refresh."""
        with self._lock:
            return self._refresh_or_list(progress)

    def _refresh_or_list(self, progress: Progress | None) -> SyncResult:
        # One reading of the injected clock (the sandbox's in local mode) dates the whole sync, so the sidebar's
        # "last sync" agrees with the pages' "now".
        now = self.clock.now()
        state = self.store.sync_state()
        if state is None:
            return self._list_window("full", progress, now)
        if now - state.cursor_created > EVENT_RETENTION_SECONDS - RETENTION_SAFETY_SECONDS:
            return self._list_window("relist", progress, now)
        return self._refresh(state, now)

    def _result(self, kind: SyncKind, written: int, applied: int, requests_before: int, synced_at: int) -> SyncResult:
        return SyncResult(kind, written, applied, self.gateway.requests_made - requests_before, synced_at)

    # -- listing (first sync, re-list) ----------------------------------------------------------------------

    def _list_window(self, kind: SyncKind, progress: Progress | None, now: int) -> SyncResult:
        requests_before = self.gateway.requests_made
        window_start = now - self.lookback_days * DAY_SECONDS
        # The cursor is taken before listing: whatever happens during the listing is in the events after it.
        recent = self.gateway.recent_events()
        latest = recent[-1] if recent else None
        cursor_id, cursor_created = _young_cursor(latest.id if latest else None, latest.created if latest else 0, now)
        # The listing will show what these did; marking them seen keeps the first refresh from redoing them.
        reflected = [event for event in recent if event.created >= cursor_created - EVENT_OVERLAP_SECONDS]
        listed = written = 0
        oldest_created = now
        window = self.store.auth_window_seconds
        for page in self.gateway.list_intents(window_start):
            listed += len(page)
            oldest_created = min([oldest_created, *(intent.created for intent in page)])
            alma = [intent for intent in page if is_alma(intent)]
            stored = self.store.get_intents(intent.id for intent in alma)
            written += self.store.save([listed_state(i, stored.get(i.id), window) for i in alma])
            if progress:
                progress(listed, _estimated_total(listed, oldest_created, now, window_start))
        self.store.save(events=_stored_events(reflected), state=SyncState(cursor_id, cursor_created, now, window_start))
        if progress:
            progress(listed, listed)
        return self._result(kind, written, 0, requests_before, now)

    # -- refresh from events ---------------------------------------------------------------------------------

    def _refresh(self, state: SyncState, now: int) -> SyncResult:
        requests_before = self.gateway.requests_made
        events, newest = self._events_since(state)  # read after `now`: the store is at least that fresh
        cursor = _young_cursor(
            *((newest.id, newest.created) if newest else (state.cursor_event_id, state.cursor_created)), now
        )
        new_state = replace(state, cursor_event_id=cursor[0], cursor_created=cursor[1], last_synced_at=now)
        written, applied = self.apply_events(events, state=new_state)
        return self._result("refresh", written, applied, requests_before, now)

    def _events_since(self, state: SyncState) -> tuple[list[StripeEvent], StripeEvent | None]:
        """The events to apply (oldest first) and the newest new one, the next cursor."""
        since = state.cursor_created - EVENT_OVERLAP_SECONDS
        if state.cursor_event_id is not None:
            try:
                fresh = self.gateway.events_after(state.cursor_event_id)
            except NotFoundError:  # the cursor event is gone: read by time instead
                pass
            else:
                # Exactly what came after the cursor, plus one page of overlap for any event that became
                # listable a moment late just before it: a burst long past costs nothing more.
                overlap = self.gateway.recent_events(created_gte=since, created_lte=state.cursor_created)
                return overlap + fresh, (fresh[-1] if fresh else None)
        events = self.gateway.list_events(since)
        return events, (events[-1] if events and events[-1].created >= state.cursor_created else None)

    def apply_events(self, events: Sequence[StripeEvent], *, state: SyncState | None = None) -> tuple[int, int]:
        """Apply the events not seen before, oldest first (same second: the given order, which is Stripe's
        when they come from the gateway), in one transaction with the new sync state. Returns (intents
        written, events applied)."""
        unique: dict[str, StripeEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)
        listing = sorted(unique.values(), key=lambda event: event.created)  # stable: keeps same-second order
        known = self.store.known_event_ids(unique)
        ordered = [event for event in listing if event.id not in known]
        intent_ids = {event.intent_id for event in ordered if event.intent_id}
        # Non-Alma intents stay in memory for this batch: a later event may reveal Alma (multi-method intents).
        stored = self.store.get_intents(intent_ids)
        states: dict[str, AlmaIntent] = dict(stored)
        changed: set[str] = set()
        for event in ordered:
            if event.intent_id is None:
                continue
            previous = states.get(event.intent_id)
            if previous is None and _is_alma_charge(event):
                # A charge of an intent never stored (created before the window, or a multi-method intent
                # whose choice of Alma this reveals): fetch that intent once.
                fetched = self.gateway.retrieve_intent(event.intent_id)
                after: AlmaIntent | None = replace(fetched, updated_at=event.created)
            else:
                after = state_after_event(previous, event)
            if after is not None:
                states[event.intent_id] = after
                changed.add(event.intent_id)
        updated = [
            states[i]
            for i in changed
            if is_alma(states[i]) and (i not in stored or _facts(states[i]) != _facts(stored[i]))
        ]
        # Known events go along so the new ones are stored in their place among them (store.save).
        written = self.store.save(updated, events=_stored_events(listing), state=state)
        return written, len(ordered)


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
        print(f"  listed {done:,} of ~{total if total is not None else '?'} intents", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.sync", description="Sync Alma intents into the store.")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", action="store_true", help="one sync, then exit")
    when.add_argument("--every", type=int, metavar="SECONDS", help="sync forever, pausing SECONDS between runs")
    args = parser.parse_args(argv)
    if args.every is not None and args.every < 1:
        parser.error("--every takes a whole number of seconds, at least 1")
    try:
        services = build_services(load_settings(os.environ), may_start_sandbox=False)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a supervisor's stop is a normal end, not a crash
    sync = AlmaSync.for_services(services)
    print(f"Alma Ops sync: {services.settings!r}, store {services.settings.db_path}", flush=True)
    try:
        while True:
            try:
                result = sync.sync_once(_print_progress)
                print(
                    f"{result.kind}: {result.intents_written} intents written, {result.events_applied} events,"
                    f" {result.requests} requests",
                    flush=True,
                )
            except (GatewayError, OSError) as error:  # OSError: the sandbox clock did not answer
                print(f"sync failed: {error}", file=sys.stderr, flush=True)
                if args.once:
                    return 1
            if args.once:
                return 0
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
