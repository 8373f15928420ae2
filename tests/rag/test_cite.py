"""Citation marker parsing and validation against the injected context."""

from __future__ import annotations

import pytest

from rag.grounding.cite import parse_markers, resolve_citations
from rag.types import Hit, Passage


def _context(n: int) -> tuple[Hit, ...]:
    return tuple(
        Hit(Passage(id=f"id{i}", text=f"text {i}", doc_id=f"doc{i}.md", source=f"/kb/doc{i}.md"), score=1 - i / 10, rank=i)
        for i in range(1, n + 1)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aspirin helps [1].", [1]),
        ("See [1, 2] and [3,4].", [1, 2, 3, 4]),
        ("Both [1][3] agree.", [1, 3]),
        ("Several [1-3] say so.", [1, 2, 3]),
        ("En dash [2–4].", [2, 3, 4]),
        ("Mixed [1, 3-4].", [1, 3, 4]),
        ("Repeats [2] then [2].", [2, 2]),
        ("No markers, [a] [] [1.5] or (1).", []),
    ],
)
def test_parse_markers(text: str, expected: list[int]) -> None:
    assert parse_markers(text) == expected


def test_huge_range_is_not_expanded() -> None:
    assert parse_markers("[1-100000]") == [1, 100000]


def test_resolve_keeps_first_appearance_order_and_drops_duplicates() -> None:
    context = _context(3)
    citations, invalid = resolve_citations("B [2]. A [1][2]. C [3, 1].", context)
    assert [c.marker for c in citations] == [2, 1, 3]
    assert invalid == ()
    assert citations[0].passage_id == context[1].passage.id
    assert citations[0].source == "/kb/doc2.md"
    assert citations[0].location == context[1].passage.location
    assert citations[0].score == context[1].score


def test_out_of_range_markers_are_dropped_and_flagged() -> None:
    citations, invalid = resolve_citations("Yes [0] [2] [5] [2-4] [5].", _context(3))
    assert [c.marker for c in citations] == [2, 3]
    assert invalid == (0, 5, 4)


def test_no_context_makes_every_marker_invalid() -> None:
    citations, invalid = resolve_citations("Claimed [1].", ())
    assert citations == ()
    assert invalid == (1,)
