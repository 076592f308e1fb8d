"""The creation index behind every list: pages newest first with bisect, exact has_more at each edge."""

from __future__ import annotations

import pytest

from dashboard.sandbox.index import CreatedIndex, PageRequest


@pytest.fixture
def index() -> CreatedIndex:
    built = CreatedIndex()
    for number in range(10):  # ids o0..o9, created 100, 110, ..., 190; o5 arrives late, in the past
        if number != 5:
            built.add(100 + 10 * number, f"o{number}")
    built.add(150, "o5")
    return built


def test_late_arrivals_take_their_place(index: CreatedIndex) -> None:
    assert list(index.newest_first()) == [f"o{number}" for number in range(9, -1, -1)]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (PageRequest(limit=3), (["o9", "o8", "o7"], True)),
        (PageRequest(limit=10), ([f"o{n}" for n in range(9, -1, -1)], False)),
        (PageRequest(limit=3, starting_after="o3"), (["o2", "o1", "o0"], False)),
        (PageRequest(limit=3, starting_after="o4"), (["o3", "o2", "o1"], True)),
        (PageRequest(limit=3, ending_before="o6"), (["o9", "o8", "o7"], False)),
        (PageRequest(limit=3, ending_before="o5"), (["o8", "o7", "o6"], True)),
        (PageRequest(limit=5, lowest=120, highest=150), (["o5", "o4", "o3", "o2"], False)),
        (PageRequest(limit=2, lowest=120, highest=150, starting_after="o5"), (["o4", "o3"], True)),
        (PageRequest(limit=2, lowest=120, highest=150, ending_before="o2"), (["o4", "o3"], True)),
        (PageRequest(limit=2, lowest=200), ([], False)),
    ],
)
def test_pages(index: CreatedIndex, request_: PageRequest, expected: tuple[list[str], bool]) -> None:
    assert index.page(request_) == expected


def test_filtered_pages_stop_after_one_extra_match(index: CreatedIndex) -> None:
    def even(object_id: str) -> bool:
        return int(object_id[1:]) % 2 == 0

    assert index.page(PageRequest(limit=2), even) == (["o8", "o6"], True)
    assert index.page(PageRequest(limit=2, starting_after="o4"), even) == (["o2", "o0"], False)
    assert index.page(PageRequest(limit=2, ending_before="o4"), even) == (["o8", "o6"], False)
    assert index.page(PageRequest(limit=1, ending_before="o4"), even) == (["o6"], True)


def test_bulk_load_sorts_once(index: CreatedIndex) -> None:
    bulk = CreatedIndex()
    bulk.add_many_unsorted([(300, "late"), (100, "early"), (200, "middle")])
    assert list(bulk.newest_first()) == ["late", "middle", "early"]
