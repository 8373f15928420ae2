"""In-memory fakes with exactly predictable outputs, shared by the tests (no models, no files)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import numpy as np

from rag.types import Filters, Passage


class KeywordEmbedder:
    """Gives each keyword its own dimension: a text's vector counts its keywords, L2-normalised.

    A text with none of the keywords gets the extra last dimension, so every vector has norm 1.
    """

    model_id = "fake-keywords"

    def __init__(self, keywords: Sequence[str]) -> None:
        self.keywords = [k.lower() for k in keywords]
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return len(self.keywords) + 1

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for col, keyword in enumerate(self.keywords):
                out[row, col] = words.count(keyword)
            if not out[row].any():
                out[row, -1] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class FakeVectorIndex:
    """Exact inner-product search over a matrix; row ``i`` has vector id ``ids[i]``; ties go to the smaller id."""

    def __init__(self, vectors: np.ndarray, ids: Sequence[int] | None = None) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.ids = np.asarray(ids if ids is not None else range(len(self.vectors)), dtype=np.int64)
        self.search_calls: list[tuple[int, np.ndarray | None]] = []  # (number of queries, allowed)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.search_calls.append((len(queries), None if allowed is None else np.asarray(allowed)))
        rows = np.arange(len(self.ids)) if allowed is None else np.flatnonzero(np.isin(self.ids, allowed))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        found = np.full((len(queries), k), -1, dtype=np.int64)
        for q, query in enumerate(queries):
            sims = self.vectors[rows] @ query
            order = sorted(range(len(rows)), key=lambda j: (-sims[j], self.ids[rows[j]]))[:k]
            scores[q, : len(order)] = sims[order]
            found[q, : len(order)] = self.ids[rows[order]]
        return scores, found

    def reconstruct(self, vector_ids: np.ndarray) -> np.ndarray:
        where = {int(v): i for i, v in enumerate(self.ids)}
        return self.vectors[[where[int(v)] for v in vector_ids]]


class FakeSparseIndex:
    """Returns fixed ranked lists per query (``default`` for other queries), honouring ``allowed`` and ``k``."""

    def __init__(self, ranked: dict[str, list[tuple[str, float]]], default: list[tuple[str, float]] = ()) -> None:
        self.ranked = ranked
        self.default = list(default)
        self.calls: list[tuple[str, int, set[str] | None]] = []

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        self.calls.append((query, k, allowed))
        found = self.ranked.get(query, self.default)
        return [(pid, s) for pid, s in found if allowed is None or pid in allowed][:k]


class FakeStore:
    """Passages in a dict; passage ``i`` (in the given order) has vector id ``i``.

    ``allowed_ids`` is the reference filter semantics: source glob (fnmatch) on ``Passage.source``, every tag in
    ``metadata["tags"]``, ISO ``metadata["date"]`` within ``[date_from, date_to]`` (a passage without a date fails a
    date filter).
    """

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = {p.id: p for p in passages}
        self.vector_of = {p.id: i for i, p in enumerate(passages)}
        self.passage_of = {i: pid for pid, i in self.vector_of.items()}

    def get_passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        return {pid: self.passages[pid] for pid in ids if pid in self.passages}

    def passage_ids_for_vectors(self, vector_ids: Sequence[int]) -> dict[int, str]:
        return {int(v): self.passage_of[int(v)] for v in vector_ids if int(v) in self.passage_of}

    def vector_ids_for(self, passage_ids: Sequence[str]) -> dict[str, int]:
        return {pid: self.vector_of[pid] for pid in passage_ids if pid in self.vector_of}

    def allowed_ids(self, filters: Filters) -> set[str] | None:
        if filters.is_empty():
            return None
        return {pid for pid, p in self.passages.items() if _matches(p, filters)}


def _matches(passage: Passage, filters: Filters) -> bool:
    if filters.source and not fnmatch.fnmatch(passage.source, filters.source):
        return False
    if not set(filters.tags) <= set(passage.metadata.get("tags", ())):
        return False
    date = passage.metadata.get("date")
    if (filters.date_from or filters.date_to) and date is None:
        return False
    if filters.date_from and str(date) < filters.date_from:
        return False
    return not (filters.date_to and str(date) > filters.date_to)


def make_passage(pid: str, text: str = "", source: str = "docs/a.md", **metadata: object) -> Passage:
    """A passage with only the fields retrieval looks at."""
    return Passage(id=pid, text=text or pid, doc_id=source, source=source, metadata=metadata)
