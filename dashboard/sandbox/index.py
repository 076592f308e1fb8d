"""A creation-ordered index: lists are read newest first with bisect, never by scanning every object."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Key = tuple[int, int, str]  # (created, insertion sequence, id): ties in one second keep creation order


@dataclass(frozen=True)
class PageRequest:
    limit: int
    lowest: int | None = None  # inclusive created bounds
    highest: int | None = None
    starting_after: str | None = None
    ending_before: str | None = None


class CreatedIndex:
    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._key_of: dict[str, Key] = {}
        self._sequence = 0

    def __contains__(self, object_id: str) -> bool:
        return object_id in self._key_of

    def add(self, created: int, object_id: str) -> None:
        key = self._key(created, object_id)
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
        else:  # an event stamped in the past (expiry at its deadline) lands in its place
            insort(self._keys, key)

    def add_many_unsorted(self, entries: list[tuple[int, str]]) -> None:
        """Bulk load (demo seed, state file): append everything, sort once. Ties in one second keep the order
        of `entries`."""
        self._keys.extend(self._key(created, object_id) for created, object_id in entries)
        self._keys.sort()

    def _key(self, created: int, object_id: str) -> Key:
        self._sequence += 1
        key = (created, self._sequence, object_id)
        self._key_of[object_id] = key
        return key

    def page(self, request: PageRequest, accept: Callable[[str], bool] | None = None) -> tuple[list[str], bool]:
        """Ids newest first, and whether more exist beyond the page in the direction of travel.
        Unknown cursors raise KeyError (the caller names the parameter)."""
        lo, hi = self._bounds(request.lowest, request.highest)
        if request.ending_before is not None:
            lo = max(lo, bisect_right(self._keys, self._key_of[request.ending_before]))
            forward = True
        else:
            if request.starting_after is not None:
                hi = min(hi, bisect_left(self._keys, self._key_of[request.starting_after]))
            forward = False
        if accept is None:
            if forward:
                end = min(hi, lo + request.limit)
                return [key[2] for key in reversed(self._keys[lo:end])], end < hi
            start = max(lo, hi - request.limit)
            return [key[2] for key in reversed(self._keys[start:hi])], start > lo
        found: list[str] = []
        for object_id in self._walk(lo, hi, forward):
            if accept(object_id):
                found.append(object_id)
                if len(found) > request.limit:
                    break
        has_more = len(found) > request.limit
        found = found[: request.limit]
        return (found[::-1] if forward else found), has_more

    def _bounds(self, lowest: int | None, highest: int | None) -> tuple[int, int]:
        lo = 0 if lowest is None else bisect_left(self._keys, (lowest,))
        hi = len(self._keys) if highest is None else bisect_left(self._keys, (highest + 1,))
        return lo, max(lo, hi)

    def _walk(self, lo: int, hi: int, forward: bool) -> Iterator[str]:
        keys = self._keys
        positions = range(lo, hi) if forward else range(hi - 1, lo - 1, -1)
        for position in positions:
            yield keys[position][2]

    def entries(self) -> list[Key]:
        """A copy of the keys, oldest first: one list copy, cheap enough to take between two requests."""
        return list(self._keys)

    def newest_first(self) -> Iterator[str]:
        return self._walk(0, len(self._keys), forward=False)

    def oldest_first(self) -> Iterator[str]:
        return self._walk(0, len(self._keys), forward=True)
