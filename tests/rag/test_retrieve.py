"""HybridRetriever with fakes: exact ranks, RRF and weighted fusion, filters on both sides, de-duplication."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeSparseIndex, FakeStore, FakeVectorIndex, KeywordEmbedder, make_passage

from rag.config import RetrievalConfig
from rag.retrieve import HybridRetriever
from rag.types import Filters

# dimensions: apple, banana, cherry, (no keyword). Query "apple" -> e0, so a passage's dense score is its e0 part.
VECTORS = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.8, 0.0, 0.6, 0.0], [0.6, 0.8, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=np.float32
)
SPARSE = {"apple": [("p2", 3.0), ("p0", 2.0), ("p3", 1.0)]}


def build(**overrides: object) -> tuple[HybridRetriever, FakeVectorIndex, FakeSparseIndex]:
    passages = [
        make_passage("p0", source="docs/fruit.md", tags=["a", "b"], date="2024-01-10"),
        make_passage("p1", source="docs/fruit.md", tags=["a"], date="2024-03-01"),
        make_passage("p2", source="notes/other.txt", tags=["a", "b"], date="2023-12-31"),
        make_passage("p3", source="docs/veg.md", tags=["b"]),
    ]
    dense, sparse = FakeVectorIndex(VECTORS), FakeSparseIndex(SPARSE)
    config = RetrievalConfig(**{"k": 4, "candidates": 10, **overrides})
    embedder = KeywordEmbedder(["apple", "banana", "cherry"])
    retriever = HybridRetriever(config, embedder, dense, sparse, FakeStore(passages))
    return retriever, dense, sparse


def ids(hits: list) -> list[str]:
    return [h.passage.id for h in hits]


def test_dense_mode_ranks_by_cosine() -> None:
    retriever, _, _ = build()
    hits = retriever.retrieve("apple", mode="dense")
    assert ids(hits) == ["p0", "p1", "p2", "p3"]
    assert [h.score for h in hits] == pytest.approx([1.0, 0.8, 0.6, 0.0])
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits[1].ranks == {"dense": 2} and hits[1].scores == {"dense": pytest.approx(0.8)}


def test_sparse_mode_keeps_bm25_order_and_does_not_embed() -> None:
    retriever, dense, _ = build()
    hits = retriever.retrieve("apple", mode="sparse")
    assert ids(hits) == ["p2", "p0", "p3"]
    assert [h.score for h in hits] == [3.0, 2.0, 1.0]
    assert dense.search_calls == [] and retriever.embedder.calls == []


def test_rrf_fusion_sums_reciprocal_ranks() -> None:
    retriever, _, _ = build(fusion="rrf", rrf_k=60)
    hits = retriever.retrieve("apple")
    expected = {"p0": 1 / 61 + 1 / 62, "p2": 1 / 63 + 1 / 61, "p3": 1 / 64 + 1 / 63, "p1": 1 / 62}
    assert ids(hits) == ["p0", "p2", "p3", "p1"]
    assert {h.passage.id: h.score for h in hits} == pytest.approx(expected)
    assert hits[1].ranks == {"dense": 3, "sparse": 1}
    assert hits[1].scores == {"dense": pytest.approx(0.6), "sparse": 3.0}
    assert hits[3].ranks == {"dense": 2}  # p1 was found by the dense side only


@pytest.mark.parametrize(
    ("weight", "order", "scores"),
    [
        (0.5, ["p2", "p0", "p1", "p3"], [0.8, 0.75, 0.4, 0.0]),
        (0.9, ["p0", "p1", "p2", "p3"], [0.95, 0.72, 0.64, 0.0]),
    ],
)
def test_weighted_fusion_of_min_max_scores(weight: float, order: list[str], scores: list[float]) -> None:
    retriever, _, _ = build(fusion="weighted", dense_weight=weight)
    hits = retriever.retrieve("apple")
    assert ids(hits) == order
    assert [h.score for h in hits] == pytest.approx(scores)


def test_k_limits_and_defaults_to_config() -> None:
    retriever, _, _ = build(k=2, fusion="rrf")
    assert ids(retriever.retrieve("apple")) == ["p0", "p2"]
    assert ids(retriever.retrieve("apple", k=3)) == ["p0", "p2", "p3"]


@pytest.mark.parametrize(
    ("filters", "allowed"),
    [
        (Filters(source="docs/*"), {"p0", "p1", "p3"}),
        (Filters(tags=("a", "b")), {"p0", "p2"}),
        (Filters(date_from="2024-01-01", date_to="2024-12-31"), {"p0", "p1"}),
        (Filters(source="docs/fruit.md", tags=("b",)), {"p0"}),
    ],
)
def test_filters_restrict_both_retrievers(filters: Filters, allowed: set[str]) -> None:
    retriever, dense, sparse = build()
    hits = retriever.retrieve("apple", filters=filters)
    assert set(ids(hits)) == allowed  # every allowed passage has a dense score, so all come back
    vector_ids = {"p0": 0, "p1": 1, "p2": 2, "p3": 3}
    assert sorted(dense.search_calls[-1][1].tolist()) == sorted(vector_ids[p] for p in allowed)
    assert sparse.calls[-1][2] == allowed


def test_filter_matching_nothing_returns_no_hits_without_searching() -> None:
    retriever, dense, sparse = build()
    assert retriever.retrieve("apple", filters=Filters(tags=("missing",))) == []
    assert dense.search_calls == [] and sparse.calls == []


def test_near_duplicates_are_collapsed_and_k_is_refilled() -> None:
    retriever, _, _ = build(dedupe_threshold=0.95)
    near = np.array([0.96, 0.28, 0, 0], dtype=np.float32)  # cosine 0.96 with p0
    retriever.dense.vectors = np.vstack([VECTORS, near])
    retriever.dense.ids = np.arange(5)
    retriever.lookup = FakeStore([*retriever.lookup.passages.values(), make_passage("p4")])
    found = ids(retriever.retrieve("apple", mode="dense", k=4))
    assert found == ["p0", "p1", "p2", "p3"]  # p4 (2nd by score) is a near-duplicate of p0
    loose = build(dedupe_threshold=0.97)[0]
    loose.dense, loose.lookup = retriever.dense, retriever.lookup
    assert ids(loose.retrieve("apple", mode="dense", k=3)) == ["p0", "p4", "p1"]


def test_batch_embeds_once_and_searches_once() -> None:
    retriever, dense, _ = build()
    batch = retriever.retrieve_batch(["apple", "cherry"], k=2, mode="dense")
    assert len(dense.search_calls) == 1 and dense.search_calls[0][0] == 2
    assert len(retriever.embedder.calls) == 1
    assert ids(batch[0]) == ["p0", "p1"]
    assert ids(batch[1]) == ["p3", "p1"]  # cherry: p3 1.0 > p1 0.6
    assert ids(batch[0]) == ids(retriever.retrieve("apple", k=2, mode="dense"))


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_rejected(query: str) -> None:
    with pytest.raises(ValueError, match="query"):
        build()[0].retrieve(query)


@pytest.mark.parametrize("k", [0, -3])
def test_bad_k_names_the_value(k: int) -> None:
    with pytest.raises(ValueError, match=f"k is {k}"):
        build()[0].retrieve("apple", k=k)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="'both'"):
        build()[0].retrieve("apple", mode="both")
