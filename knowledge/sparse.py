"""Persistent BM25 index (bm25s) kept in step with ingest and removal without a full rebuild per change.

Design: a large *main* segment plus a few small *delta* segments, all bm25s indexes.

* ``add`` indexes only the new batch as one more delta segment; deltas are then combined like a binary counter
  (while the newest is at least as large as the one before, the two are merged from their kept token lists), so
  there are O(log n) deltas and each passage is re-indexed O(log n) times: no texts are needed, no full rebuild.
* ``remove`` re-indexes the delta that holds a passage without it, or records a main passage as a *tombstone*.
* When the deltas or the tombstones outgrow ``merge_fraction`` of the main segment, ``save`` first merges:
  a full rebuild from ``texts_for()`` (the live passages, as the store has them at that moment).

Scores are comparable across segments: bm25s stores ``idf_segment(t) * tf_part(t, d)`` per term and document,
and at query time each term's column is rescaled by ``idf_global(t) / idf_segment(t)``, where the global IDF
uses the document frequencies summed over the segments. So a passage scores (almost) as it would in one index; the
remaining differences are the length normalisation (each segment uses its own average length) and tombstoned
passages still counting in document frequencies until the next merge.

Disk layout (no pickle: bm25s writes ``.npy`` with ``allow_pickle=False`` plus JSON)::

    folder/CURRENT            {"version": "v7"}  -- replaced atomically (os.replace) as the last step of save
    folder/v7/state.json      settings, main ids, tombstones, the deltas' ids and tokens
    folder/v7/main/           bm25s files of the main segment
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np

from rag.config import RetrievalConfig
from rag.errors import IndexMismatchError

FORMAT_VERSION = 2
TextsFor = Callable[[], Iterable[tuple[str, str]]]


class _Segment:
    """One bm25s index over a list of passage ids (row ``i`` of the index is ``ids[i]``)."""

    def __init__(self, ids: list[str], model: bm25s.BM25 | None) -> None:
        self.ids = ids
        self.rows = {pid: i for i, pid in enumerate(ids)}
        self.model = model
        self.dead = np.zeros(len(ids), dtype=bool)

    @classmethod
    def build(cls, ids: list[str], tokens: list[list[str]], config: RetrievalConfig) -> _Segment:
        if not ids:
            return cls([], None)
        model = bm25s.BM25(k1=config.bm25_k1, b=config.bm25_b, method="lucene")
        model.index(tokens, show_progress=False)
        return cls(ids, model)

    def df(self, token: str) -> int:
        """Documents of this segment containing ``token`` (lucene scores are > 0 wherever a term occurs)."""
        tid = self.model.vocab_dict.get(token) if self.model is not None else None
        if tid is None:
            return 0
        indptr = self.model.scores["indptr"]
        return int(indptr[tid + 1] - indptr[tid])

    def scores(self, weights: dict[str, float]) -> np.ndarray:
        """Sum over query terms of ``weight * stored score`` for every row (one bincount over the columns)."""
        data, indices, indptr = (self.model.scores[key] for key in ("data", "indices", "indptr"))
        rows, values = [], []
        for token, weight in weights.items():
            tid = self.model.vocab_dict.get(token)
            if tid is not None:
                lo, hi = int(indptr[tid]), int(indptr[tid + 1])
                rows.append(indices[lo:hi])
                values.append(data[lo:hi].astype(np.float64) * weight)
        if not rows:
            return np.zeros(len(self.ids))
        return np.bincount(np.concatenate(rows), weights=np.concatenate(values), minlength=len(self.ids))


def _idf(df: int, n: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))  # bm25s "lucene" IDF


class BM25Index:
    """BM25 over passages keyed by passage id, persisted in ``folder`` and updated incrementally.

    Example:
        >>> index = BM25Index(Path("kb/bm25"), RetrievalConfig())
        >>> index.add([("p1", "The cat sat on the mat."), ("p2", "Dogs bark.")])
        >>> index.search("cat", k=1)[0][0]
        'p1'
        >>> index.save()

    Args:
        folder: where the index lives; loaded in the constructor when it holds one.
        config: k1, b and stemmer come from here; a saved index with other settings is rebuilt from
            ``texts_for`` (or ``IndexMismatchError`` without it).
        texts_for: returns every live passage as ``(passage_id, text)``; needed for merges.
        merge_fraction: merge when the deltas or the tombstones exceed this fraction of the main segment.
    """

    def __init__(
        self, folder: Path, config: RetrievalConfig, texts_for: TextsFor | None = None, merge_fraction: float = 0.1
    ) -> None:
        if not 0 < merge_fraction <= 1:
            raise ValueError(f"merge_fraction must be in (0, 1]. Currently, merge_fraction is {merge_fraction}")
        self.folder = Path(folder)
        self.config = config
        self.texts_for = texts_for
        self.merge_fraction = merge_fraction
        self._stemmer = _make_stemmer(config.bm25_stemmer)
        self.main = _Segment([], None)
        self.deltas: list[tuple[dict[str, list[str]], _Segment]] = []  # (tokens by passage id, its index)
        if (self.folder / "CURRENT").is_file():
            self._load()

    # ---- updates -------------------------------------------------------------------------------------------

    def add(self, items: Sequence[tuple[str, str]]) -> None:
        """Index ``(passage_id, text)`` pairs. An id already live in the main segment is left as it is."""
        tokens = self.tokenize([text for _, text in items])
        fresh = {pid: toks for (pid, _), toks in zip(items, tokens) if not self._live_in_main(pid)}
        if not fresh:
            return
        self._drop_from_deltas(fresh.keys())  # a re-added delta passage is replaced
        if not self.main.ids:  # nothing to merge into: the first batch becomes the main segment
            self.main = _Segment.build(list(fresh), list(fresh.values()), self.config)
            return
        self.deltas.append(self._delta(fresh))
        while len(self.deltas) > 1 and len(self.deltas[-1][0]) >= len(self.deltas[-2][0]):
            newer, older = self.deltas.pop(), self.deltas.pop()
            self.deltas.append(self._delta({**older[0], **newer[0]}))

    def remove(self, ids: Iterable[str]) -> None:
        """Forget passages: delta ones are dropped at once, main ones are tombstoned until the next merge."""
        ids = set(ids)
        for pid in ids & self.main.rows.keys():
            self.main.dead[self.main.rows[pid]] = True
        self._drop_from_deltas(ids)

    def rebuild(self, items: Iterable[tuple[str, str]]) -> None:
        """Replace everything with one main segment over ``items`` (call ``save`` to persist)."""
        items = list(items)
        self.main = _Segment.build([pid for pid, _ in items], self.tokenize([t for _, t in items]), self.config)
        self.deltas = []

    def needs_merge(self) -> bool:
        limit = self.merge_fraction * len(self.main.ids)
        return sum(len(tokens) for tokens, _ in self.deltas) > limit or int(self.main.dead.sum()) > limit

    def segment_sizes(self) -> list[int]:
        """Passages per segment, main first (tombstoned ones included), then the deltas oldest first."""
        return [len(self.main.ids)] + [len(tokens) for tokens, _ in self.deltas]

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Lowercase word tokens without English stopwords, stemmed when a stemmer is configured."""
        if not texts:
            return []
        return bm25s.tokenize(
            list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False
        )

    def __len__(self) -> int:
        return len(self.main.ids) - int(self.main.dead.sum()) + sum(len(tokens) for tokens, _ in self.deltas)

    def ids(self) -> list[str]:
        """Every live passage id (main minus tombstones, then the deltas)."""
        return [p for p, dead in zip(self.main.ids, self.main.dead) if not dead] + [
            pid for tokens, _ in self.deltas for pid in tokens
        ]

    def __contains__(self, pid: object) -> bool:
        return self._live_in_main(pid) or any(pid in tokens for tokens, _ in self.deltas)

    # ---- search --------------------------------------------------------------------------------------------

    def _segments(self) -> list[_Segment]:
        """The main segment and the deltas that hold passages."""
        return [s for s in (self.main, *(seg for _, seg in self.deltas)) if s.model is not None]

    def idf(self, word: str) -> float | None:
        """BM25 IDF of ``word`` over every live segment (mean over its tokens); None for a stopword."""
        terms = self.tokenize([word])[0]
        segments = self._segments()
        if not terms:
            return None
        n_total = sum(len(s.ids) for s in segments)
        return sum(_idf(sum(s.df(t) for s in segments), n_total) for t in terms) / len(terms)

    def holds(self, word: str) -> bool:
        """True when some passage holds ``word`` (each of its tokens); False for a stopword."""
        terms = self.tokenize([word])[0]
        segments = self._segments()
        return bool(terms) and all(sum(s.df(t) for s in segments) > 0 for t in terms)

    def rare_word(self, word: str, share: float = 0.02) -> bool:
        """True when some passages hold ``word`` but at most ``share`` of them (and at least 2 may): a word that
        identifies what a question is about ("geology"), not a word every passage has, nor one none has."""
        terms = self.tokenize([word])[0]
        if len(terms) != 1:
            return False
        segments = self._segments()
        df = sum(s.df(terms[0]) for s in segments)
        return 0 < df <= max(2.0, share * sum(len(s.ids) for s in segments))

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(passage_id, score)`` pairs, best first; passages outside ``allowed`` are skipped.

        Only passages sharing at least one term with the query are returned (so possibly fewer than ``k``).
        """
        if k <= 0:
            raise ValueError(f"k must be greater than 0. Currently, k is {k}")
        terms = self.tokenize([query])[0]
        segments = self._segments()
        if not terms or not segments:
            return []
        weights = self._term_weights(terms, segments)
        found: list[tuple[str, float]] = []
        for seg in segments:
            found.extend(self._top(seg, seg.scores(weights.get(id(seg), {})), k, allowed))
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found[:k]

    def _term_weights(self, terms: list[str], segments: list[_Segment]) -> dict[int, dict[str, float]]:
        """Per segment: query-term count * idf_global / idf_segment, i.e. the rescaling to global statistics."""
        n_total = sum(len(s.ids) for s in segments)
        weights: dict[int, dict[str, float]] = {id(s): {} for s in segments}
        for term in set(terms):
            dfs = {id(s): s.df(term) for s in segments}
            global_idf = _idf(sum(dfs.values()), n_total)
            for seg in segments:
                if dfs[id(seg)]:
                    weights[id(seg)][term] = terms.count(term) * global_idf / _idf(dfs[id(seg)], len(seg.ids))
        return weights

    @staticmethod
    def _top(seg: _Segment, scores: np.ndarray, k: int, allowed: set[str] | None) -> list[tuple[str, float]]:
        keep = (scores > 0) & ~seg.dead
        if allowed is not None:
            mask = np.zeros(len(seg.ids), dtype=bool)
            mask[[seg.rows[p] for p in allowed if p in seg.rows]] = True
            keep &= mask
        rows = np.flatnonzero(keep)
        if len(rows) > k:
            rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        return [(seg.ids[r], float(scores[r])) for r in rows]

    # ---- persistence ---------------------------------------------------------------------------------------

    def save(self) -> None:
        """Merge first when due (and ``texts_for`` is set), then write a new version and switch to it atomically.

        Call it after the store has committed: a merge reads the live passages from ``texts_for``.
        """
        if self.needs_merge() and self.texts_for is not None:
            self.rebuild(self.texts_for())
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._current_version()
        version = f"v{int(old[1:]) + 1 if old else 1}"
        target = self.folder / version
        shutil.rmtree(target, ignore_errors=True)  # leftovers of an interrupted save
        self._write(target)
        tmp = self.folder / "CURRENT.tmp"
        tmp.write_text(json.dumps({"version": version}), encoding="utf-8")
        os.replace(tmp, self.folder / "CURRENT")
        for stale in self.folder.glob("v*"):
            if stale.is_dir() and stale.name != version:
                shutil.rmtree(stale, ignore_errors=True)

    def _write(self, target: Path) -> None:
        target.mkdir(parents=True)
        if self.main.model is not None:
            self.main.model.save(target / "main", allow_pickle=False, show_progress=False)
        dead = [p for p, d in zip(self.main.ids, self.main.dead) if d]
        deltas = [tokens for tokens, _ in self.deltas]
        state = {**self._settings(), "main_ids": self.main.ids, "tombstones": dead, "deltas": deltas}
        (target / "state.json").write_text(json.dumps(state), encoding="utf-8")

    def _load(self) -> None:
        version = self._current_version()
        state = json.loads((self.folder / version / "state.json").read_text(encoding="utf-8"))
        if {key: state.get(key) for key in self._settings()} != self._settings():
            if self.texts_for is None:
                raise IndexMismatchError(f"BM25 index in {self.folder} was built with other settings; rebuild it")
            self.rebuild(self.texts_for())
            return
        model = None
        if state["main_ids"]:
            model = bm25s.BM25.load(self.folder / version / "main", mmap=False, allow_pickle=False)
        self.main = _Segment(state["main_ids"], model)
        self.remove(state["tombstones"])
        self.deltas = [self._delta(tokens) for tokens in state["deltas"]]

    def _current_version(self) -> str | None:
        pointer = self.folder / "CURRENT"
        return json.loads(pointer.read_text(encoding="utf-8"))["version"] if pointer.is_file() else None

    def _settings(self) -> dict[str, object]:
        cfg = self.config
        return {"format": FORMAT_VERSION, "k1": cfg.bm25_k1, "b": cfg.bm25_b, "stemmer": cfg.bm25_stemmer}

    # ---- helpers -------------------------------------------------------------------------------------------

    def _delta(self, tokens: dict[str, list[str]]) -> tuple[dict[str, list[str]], _Segment]:
        return tokens, _Segment.build(list(tokens), list(tokens.values()), self.config)

    def _drop_from_deltas(self, ids: Iterable[str]) -> None:
        ids = set(ids)
        for i, (tokens, _) in enumerate(self.deltas):
            if ids & tokens.keys():
                self.deltas[i] = self._delta({p: t for p, t in tokens.items() if p not in ids})
        self.deltas = [d for d in self.deltas if d[0]]

    def _live_in_main(self, pid: object) -> bool:
        row = self.main.rows.get(pid)  # type: ignore[arg-type]
        return row is not None and not self.main.dead[row]


def _make_stemmer(language: str):  # noqa: ANN202 - Stemmer.Stemmer, imported lazily
    if not language:
        return None
    import Stemmer

    try:
        return Stemmer.Stemmer(language)
    except KeyError:
        raise ValueError(f"unknown bm25_stemmer language '{language}'") from None
