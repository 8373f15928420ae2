"""Hybrid retrieval: dense (vector index) and sparse (BM25) candidates, fused, filtered and de-duplicated.

The retriever depends only on the protocols below, so tests pass in-memory fakes and the knowledge base passes
its SQLite store, FAISS index and BM25 index.

Filter contract: ``RetrievalLookup.allowed_ids(filters)`` does all metadata matching (source glob via fnmatch on
``Passage.source``, every tag present in ``metadata["tags"]``, ISO ``metadata["date"]`` within the range) and
returns the passage ids that match, or ``None`` for "no restriction". The retriever then restricts *both*
retrievers to that set before ranking — dense via ``allowed`` vector ids, sparse via ``allowed`` passage ids — so
filtering never empties a top-k that a post-filter would have cut short.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rag.config import RetrievalConfig
from rag.types import Embedder, Filters, Hit, Passage

RETRIEVERS = ("dense", "sparse")


class FilterableVectorIndex(Protocol):
    """Nearest-neighbour search that can be restricted to some vector ids and can return stored vectors."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search: ``(scores, vector_ids)`` of shape ``(len(queries), k)``, best first, ``-1`` ids
        in empty slots. ``allowed`` (int64 vector ids) limits the search to those vectors (FAISS IDSelector)."""
        ...

    def reconstruct(self, vector_ids: np.ndarray) -> np.ndarray:
        """The stored (L2-normalised) vectors of ``vector_ids``, shape ``(len(vector_ids), dim)``."""
        ...

    def __len__(self) -> int: ...


class FilterableSparseIndex(Protocol):
    """BM25 search that can be restricted to some passage ids."""

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` ``(passage_id, score)`` pairs, best first, only ids in ``allowed`` when it is given."""
        ...


class RetrievalLookup(Protocol):
    """What the retriever needs from the passage store."""

    def get_passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """Passages by id; unknown ids are absent from the result."""
        ...

    def passage_ids_for_vectors(self, vector_ids: Sequence[int]) -> dict[int, str]:
        """Passage id of each known vector id (unknown ones absent)."""
        ...

    def vector_ids_for(self, passage_ids: Sequence[str]) -> dict[str, int]:
        """Vector id of each passage id that has one (unknown ones absent)."""
        ...

    def allowed_ids(self, filters: Filters) -> set[str] | None:
        """Passage ids whose source/tags/date match ``filters``; ``None`` when ``filters`` restricts nothing."""
        ...


class HybridRetriever:
    """Retrieves passages with dense search, BM25, or both fused (reciprocal-rank or weighted fusion).

    Example:
        >>> retriever = HybridRetriever(RetrievalConfig(), embedder, vector_index, bm25_index, store)
        >>> hits = retriever.retrieve("what causes scurvy?", k=3, filters=Filters(tags=("medicine",)))
        >>> hits[0].ranks  # e.g. {"dense": 1, "sparse": 2}
    """

    def __init__(
        self,
        config: RetrievalConfig,
        embedder: Embedder,
        dense: FilterableVectorIndex,
        sparse: FilterableSparseIndex,
        lookup: RetrievalLookup,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.dense = dense
        self.sparse = sparse
        self.lookup = lookup

    def retrieve(
        self, query: str, k: int | None = None, filters: Filters | None = None, mode: str | None = None
    ) -> list[Hit]:
        """The ``k`` best hits for ``query`` (default ``config.k``), best first, ``rank`` counting from 1."""
        return self.retrieve_batch([query], k, filters, mode)[0]

    def retrieve_batch(
        self, queries: Sequence[str], k: int | None = None, filters: Filters | None = None, mode: str | None = None
    ) -> list[list[Hit]]:
        """``retrieve`` for many queries: one embedding batch and one vector search for all of them."""
        k = self.config.k if k is None else k
        mode = mode or self.config.mode
        _validate(queries, k, mode)
        allowed = self.lookup.allowed_ids(filters) if filters is not None and not filters.is_empty() else None
        if allowed is not None and not allowed:
            return [[] for _ in queries]
        n = max(self.config.candidates, k)
        dense = self._dense(queries, n, allowed) if mode != "sparse" else [[] for _ in queries]
        sparse = [self.sparse.search(q, n, allowed) for q in queries] if mode != "dense" else [[] for _ in queries]
        return [self._hits(d, s, k, mode) for d, s in zip(dense, sparse)]

    # ---- the two retrievers --------------------------------------------------------------------------------

    def _dense(self, queries: Sequence[str], n: int, allowed: set[str] | None) -> list[list[tuple[str, float]]]:
        allowed_vectors = None
        if allowed is not None:
            allowed_vectors = np.array(sorted(self.lookup.vector_ids_for(sorted(allowed)).values()), dtype=np.int64)
            if not len(allowed_vectors):
                return [[] for _ in queries]
        embed = getattr(self.embedder, "embed_queries", self.embedder.embed)
        vectors = np.ascontiguousarray(embed(list(queries)), dtype=np.float32)
        scores, ids = self.dense.search(vectors, n, allowed=allowed_vectors)
        names = self.lookup.passage_ids_for_vectors(sorted({int(i) for i in ids.ravel() if i >= 0}))
        return [
            [(names[int(i)], float(s)) for s, i in zip(row_s, row_i) if i >= 0 and int(i) in names]
            for row_s, row_i in zip(scores, ids)
        ]

    # ---- fusion, de-duplication, hits ----------------------------------------------------------------------

    def _hits(self, dense: list[tuple[str, float]], sparse: list[tuple[str, float]], k: int, mode: str) -> list[Hit]:
        lists = {"dense": dense, "sparse": sparse}
        ranks = {name: {pid: r for r, (pid, _) in enumerate(found, 1)} for name, found in lists.items()}
        raw = {name: dict(found) for name, found in lists.items()}
        if mode == "hybrid":
            fused = self.weigh_sources(self.fuse(dense, sparse))
        else:
            fused = raw[mode]
        order = sorted(fused, key=lambda pid: (-fused[pid], pid))
        kept = self._dedupe(order, k)
        passages = self.lookup.get_passages(kept)
        hits = []
        for pid in (p for p in kept if p in passages):
            hits.append(
                Hit(
                    passage=passages[pid],
                    score=float(fused[pid]),
                    rank=len(hits) + 1,
                    scores={name: raw[name][pid] for name in RETRIEVERS if pid in raw[name]},
                    ranks={name: ranks[name][pid] for name in RETRIEVERS if pid in ranks[name]},
                )
            )
        return hits

    def fuse(self, dense: list[tuple[str, float]], sparse: list[tuple[str, float]]) -> dict[str, float]:
        """Fused score per passage id of two ranked lists (best first), by ``config.fusion``.

        ``rrf``: sum of ``1 / (rrf_k + rank)`` over the lists a passage appears in (rank from 1).
        ``weighted``: ``dense_weight * d + (1 - dense_weight) * s`` of min-max normalised scores (0 when absent;
        a list whose scores are all equal normalises to 1).
        """
        fused: dict[str, float] = {}
        if self.config.fusion == "rrf":
            for found in (dense, sparse):
                for rank, (pid, _) in enumerate(found, 1):
                    fused[pid] = fused.get(pid, 0.0) + 1.0 / (self.config.rrf_k + rank)
            return fused
        weight = self.config.dense_weight
        for found, w in ((dense, weight), (sparse, 1.0 - weight)):
            for pid, norm in _min_max(found).items():
                fused[pid] = fused.get(pid, 0.0) + w * norm
        return fused

    def weigh_sources(self, fused: dict[str, float]) -> dict[str, float]:
        """Multiply each fused score by the weight of the first ``config.source_weights`` glob (fnmatch on the full
        source path) matching its passage's source; e.g. ``{"*/release-notes.md": 0.3}`` tames a huge changelog."""
        weights = self.config.source_weights
        if not weights or not fused:
            return fused
        passages = self.lookup.get_passages(list(fused))
        out = {}
        for pid, score in fused.items():
            source = passages[pid].source if pid in passages else ""
            weight = next((w for glob, w in weights.items() if fnmatch.fnmatch(source, glob)), 1.0)
            out[pid] = score * weight
        return out

    def _dedupe(self, order: list[str], k: int) -> list[str]:
        """The first ``k`` ids of ``order``, skipping one whose vector has cosine >= threshold with a kept one.

        Vectors are fetched a window of ``2 * k`` candidates at a time: usually only the first window is needed.
        """
        kept: list[str] = []
        kept_vectors: list[np.ndarray] = []
        vectors: dict[str, np.ndarray] = {}
        for i, pid in enumerate(order):
            if len(kept) == k:
                break
            if i % (2 * k) == 0:
                vectors.update(self._vectors(order[i : i + 2 * k]))
            vec = vectors.get(pid)
            if vec is not None and kept_vectors and _max_cosine(kept_vectors, vec) >= self.config.dedupe_threshold:
                continue
            kept.append(pid)
            if vec is not None:
                kept_vectors.append(vec)
        return kept

    def _vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        vector_ids = self.lookup.vector_ids_for(ids)
        with_vectors = [pid for pid in ids if pid in vector_ids]
        if not with_vectors:
            return {}
        stored = self.dense.reconstruct(np.array([vector_ids[p] for p in with_vectors], dtype=np.int64))
        return dict(zip(with_vectors, np.asarray(stored, dtype=np.float32)))


def _max_cosine(kept: list[np.ndarray], vector: np.ndarray) -> float:
    return float(np.max(np.stack(kept) @ vector))  # stored vectors are L2-normalised: dot = cosine


def _min_max(found: list[tuple[str, float]]) -> dict[str, float]:
    if not found:
        return {}
    scores = np.array([s for _, s in found], dtype=np.float64)
    span = scores.max() - scores.min()
    normed = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    return {pid: float(v) for (pid, _), v in zip(found, normed)}


def _validate(queries: Sequence[str], k: int, mode: str) -> None:
    if isinstance(queries, str):
        raise TypeError("queries must be a sequence of strings, not one string; use retrieve() for one query")
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, k is {k}")
    if mode not in ("hybrid", *RETRIEVERS):
        raise ValueError(f"mode must be 'hybrid', 'dense' or 'sparse'. Currently, mode is {mode!r}")
    for query in queries:
        if not query or not query.strip():
            raise ValueError(f"query must not be empty. Currently, query is {query!r}")
