"""Pausing Python's cyclic garbage collector around bulk work.

A sandbox account is millions of small immutable objects without reference cycles. A full collection scans
every tracked object (about a second per 100k intents) and holds the GIL meanwhile, so it lands as a stall on
whichever request is running. Bulk work (seeding, loading, saving) pauses the collector; the pause is
counted, because a save in a worker thread can overlap a reset in the event loop.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    global _pauses
    with _lock:
        _pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0:
                gc.enable()


@contextlib.contextmanager
def long_lived_allocation() -> Iterator[None]:
    """Seeding or loading: the objects made live as long as the account, so once made they are frozen out
    of the collector's sight. Reference counting still frees them after a reset."""
    with collector_paused():
        try:
            yield
        finally:
            gc.freeze()
