"""Demo data: Alma intents over the last 30 days, driven through the model's own transitions at past instants,
so every intent's events history is exactly what the live sandbox would have produced. Customers give their
name and email on Alma's page; some paid orders are refunded later, partly or fully (a few of those refunds
fail), and every captured payment carries the sandbox's Alma fee in its balance transaction.

Every step happens at a plausible instant before the seed's `now`: each story starts early enough for its
steps to fit, and a step that may take long (a capture, a cancel) is drawn within the time left, never
pushed to `now` (which would pile the steps of many intents into the seed's last second)."""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from .model import (
    ALMA,
    FAILED_CODE,
    INSTALLMENT_COUNTS,
    REFUND_FAILURE_FLAG,
    Attempt,
    Customer,
    IntentDraft,
    RefundDraft,
    RequestRef,
    Sandbox,
)

DAY = 24 * 3600
HISTORY_SECONDS = 30 * DAY
DEMO_RETURN_URL = "http://localhost:8501/return"
PRODUCTS = ("Sofa", "Bike", "Laptop", "Washing machine", "Mattress", "Camera", "Phone", "Desk", "Oven", "Guitar")
FIRST_NAMES = ("Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès", "Louis", "Camille", "Noé", "Zoé", "Éric")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy", "Moreau", "Lefèvre")
REFUNDED_SHARE = 0.12  # of paid orders; of those, 40% in full and 60% in part
FAILED_REFUND_SHARE = 0.05  # of refunds


@dataclass(frozen=True)
class Story:
    """One intent's fate, as a weight in the mix and the steps that produce it."""

    name: str
    weight: float
    play: Callable[[Seeder, str, int], None]
    manual_capture: bool = False  # False: the shop's usual mix (mostly automatic)


class Seeder:
    def __init__(self, sandbox: Sandbox, now: int, rng: random.Random) -> None:
        self.sandbox = sandbox
        self.now = now
        self.rng = rng
        self.order_number = rng.randint(1000, 5000)

    def seed(self, count: int) -> None:
        stories = STORIES
        weights = [story.weight for story in stories]
        with self.sandbox.bulk():
            for story in self.rng.choices(stories, weights, k=count):
                started = self._start_time(story.name)
                intent_id = self._create(started, story.manual_capture or self.rng.random() < 0.12)
                story.play(self, intent_id, started)
            self.sandbox.sweep(self.now)  # expiries and 7-day cancels happen at their own past instants

    # ---- steps -------------------------------------------------------------------------------------------
    def _start_time(self, story: str) -> int:
        window = self.sandbox.rules.auth_window
        if story == "awaiting_customer":  # still on Alma's page: between ~5% and ~90% of the window left
            # and confirmed (up to 40 s after this start) before `now`, so some of the window has passed
            lowest = max(1, window // 20)
            return self.now - window + self.rng.randint(lowest, max(lowest, min(window - window // 12, window - 41)))
        if story == "awaiting_capture":  # authorised an hour to 6 days ago: inside the 7-day capture window
            return self.now - self.rng.randint(3600, 6 * DAY)
        if story == "capture_lapsed":  # authorised over a week ago: the sweep cancels it at +7 days
            return self.now - self.rng.randint(8 * DAY, HISTORY_SECONDS)
        # skewed towards recent days, as a growing shop's history is; at least the auth window and an hour
        # back, so the customer's answer (or the attempt's expiry) and what follows it fit before now
        return self.now - int(HISTORY_SECONDS * (1 - math.sqrt(self.rng.random()))) - window - 3600

    def request(self) -> RequestRef:
        ids = self.sandbox.ids
        return RequestRef(ids.new("req_", 14), ids.new("", 16))

    def _create(self, at: int, manual: bool) -> str:
        self.order_number += 1
        product = self.rng.choice(PRODUCTS)
        rules = self.sandbox.rules
        euros = min(max(self.rng.lognormvariate(math.log(450), 0.7), rules.min_amount / 100), rules.max_amount / 100)
        amount = int(euros) * 100 + self.rng.choice((0, 0, 0, 90, 99))
        draft = IntentDraft(
            amount=min(max(amount, rules.min_amount), rules.max_amount),
            currency="eur",
            payment_method_types=(ALMA,),
            automatic_payment_methods=False,
            capture_method="automatic_async",
            alma_capture_method="manual" if manual else None,
            description=f"Order #{self.order_number} · {product}",
            metadata={"order_id": f"ORD-{self.order_number}", "channel": self.rng.choice(("web", "web", "app"))},
            payment_method_type=None,
            confirm=False,
            return_url=None,
        )
        return self.sandbox.create_intent(draft, at, self.request()).id

    def after(self, at: int, low: int, high: int) -> int:
        """An instant `low`..`high` seconds after `at`, drawn over the part of that range already past."""
        return self.rng.randint(at + low, max(at + low, min(at + high, self.now)))

    def customer(self) -> Customer:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode().lower()
        return Customer(name=f"{first} {last}", email=f"{plain}{self.rng.randint(1, 99)}@example.com")

    def confirm(self, intent_id: str, at: int) -> int:
        confirmed_at = self.after(at, 1, 40)
        attempt = Attempt(ALMA, DEMO_RETURN_URL, billing=self.customer())
        self.sandbox.confirm(intent_id, attempt, confirmed_at, self.request())
        return confirmed_at

    def maybe_refund(self, intent_id: str, paid_at: int) -> None:
        """Some paid orders come back an hour to 12 days later; those paid within the last hour are too recent."""
        if self.rng.random() >= REFUNDED_SHARE or paid_at + 3600 > self.now:
            return
        amount = self.sandbox.intents[intent_id].amount_received
        if self.rng.random() < 0.6:
            amount = amount * self.rng.choice((10, 15, 20, 25, 30, 50)) // 100
        reason = self.rng.choice(("requested_by_customer", "requested_by_customer", "duplicate", None))
        key, value = REFUND_FAILURE_FLAG
        metadata = {key: value} if self.rng.random() < FAILED_REFUND_SHARE else {}
        draft = RefundDraft(charge=None, payment_intent=intent_id, amount=amount, reason=reason, metadata=metadata)
        self.sandbox.refund(draft, self.after(paid_at, 3600, 12 * DAY), self.request())

    def customer_acts(self, at: int) -> int:
        return self.after(at, 45, 20 * 60)

    def authorize(self, intent_id: str, at: int) -> int:
        decided = self.customer_acts(self.confirm(intent_id, at))
        self.sandbox.authorize(intent_id, self.rng.choice(INSTALLMENT_COUNTS), decided)
        return decided

    def decline(self, intent_id: str, at: int) -> int:
        decided = self.customer_acts(self.confirm(intent_id, at))
        self.sandbox.fail_attempt(intent_id, FAILED_CODE, decided)
        return decided


def _succeeded(seeder: Seeder, intent_id: str, at: int) -> None:
    paid = seeder.authorize(intent_id, at)
    if seeder.sandbox.intents[intent_id].status == "requires_capture":
        paid = seeder.after(paid, 600, 2 * DAY)
        seeder.sandbox.capture(intent_id, None, paid, seeder.request())
    seeder.maybe_refund(intent_id, paid)


def _declined(seeder: Seeder, intent_id: str, at: int) -> None:
    seeder.decline(intent_id, at)


def _declined_then_paid(seeder: Seeder, intent_id: str, at: int) -> None:
    _succeeded(seeder, intent_id, seeder.decline(intent_id, at))


def _expired(seeder: Seeder, intent_id: str, at: int) -> None:
    seeder.confirm(intent_id, at)  # the sweep expires it at confirm + auth window


def _canceled(seeder: Seeder, intent_id: str, at: int) -> None:
    reason = seeder.rng.choice(("requested_by_customer", "abandoned", "duplicate"))
    if seeder.rng.random() < 0.5:
        at = seeder.decline(intent_id, at)
    seeder.sandbox.cancel(intent_id, reason, seeder.after(at, 60, 3 * 3600), seeder.request())


def _awaiting_customer(seeder: Seeder, intent_id: str, at: int) -> None:
    seeder.confirm(intent_id, at)


def _authorized_only(seeder: Seeder, intent_id: str, at: int) -> None:
    seeder.authorize(intent_id, at)


STORIES = (
    Story("succeeded", 0.62, _succeeded),
    Story("declined", 0.09, _declined),
    Story("declined_then_paid", 0.04, _declined_then_paid),
    Story("expired", 0.10, _expired),
    Story("canceled", 0.08, _canceled),
    Story("awaiting_customer", 0.02, _awaiting_customer),
    Story("awaiting_capture", 0.03, _authorized_only, manual_capture=True),
    Story("capture_lapsed", 0.02, _authorized_only, manual_capture=True),  # the sweep cancels it after 7 days
)


def seed_demo(sandbox: Sandbox, count: int, now: int, seed: int | None = None) -> None:
    Seeder(sandbox, now, random.Random(seed)).seed(count)
