"""retrieval.source_weights: a glob's multiplier applies to the fused scores of hits whose source matches."""

from __future__ import annotations

import pytest
from test_retrieve import build, ids


def test_without_weights_the_fused_order_is_unchanged() -> None:
    retriever, _, _ = build(fusion="rrf", rrf_k=60)
    assert ids(retriever.retrieve("apple")) == ["p0", "p2", "p3", "p1"]


def test_a_down_weighted_source_drops_and_its_score_is_multiplied() -> None:
    plain, _, _ = build(fusion="rrf", rrf_k=60)
    weighted, _, _ = build(fusion="rrf", rrf_k=60, source_weights={"docs/fruit.md": 0.1})
    before = {h.passage.id: h.score for h in plain.retrieve("apple")}
    hits = weighted.retrieve("apple")
    assert ids(hits) == ["p2", "p3", "p0", "p1"]  # both docs/fruit.md passages go last
    assert {h.passage.id: h.score for h in hits} == pytest.approx(
        {"p0": before["p0"] * 0.1, "p1": before["p1"] * 0.1, "p2": before["p2"], "p3": before["p3"]})


def test_globs_match_full_paths_and_the_first_matching_glob_wins() -> None:
    retriever, _, _ = build(fusion="rrf", rrf_k=60, source_weights={"notes/*": 3.0, "*.txt": 0.0, "*veg*": 0.5})
    hits = retriever.retrieve("apple")
    assert ids(hits)[0] == "p2"  # notes/other.txt: "notes/*" (x3) matched before "*.txt" (x0)
    assert ids(hits)[-1] == "p3"  # docs/veg.md halved below p1


def test_single_retriever_modes_are_not_weighted() -> None:
    retriever, _, _ = build(source_weights={"docs/*": 0.0})
    assert ids(retriever.retrieve("apple", mode="dense")) == ["p0", "p1", "p2", "p3"]
