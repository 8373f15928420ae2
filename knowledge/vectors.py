"""FAISS vector index persisted in the KB folder: exact (flat), HNSW or IVF, keyed by int64 vector ids.

The file is written to a temporary name and renamed, so a crash leaves either the old or the new index.
``auto`` uses exact search up to ``IndexConfig.auto_threshold`` vectors and HNSW past it, rebuilding on crossing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from rag.config import IndexConfig


class FaissVectorIndex:
    """Inner-product search over normalised vectors, with ids, filters, removal and atomic saves.

    Example:
        >>> index = FaissVectorIndex(Path("kb/vectors.faiss"), 384, IndexConfig())
        >>> index.add(np.array([7]), np.ones((1, 384), dtype="float32") / 384**0.5)
        >>> index.search(np.ones((1, 384), dtype="float32"), 1)[1][0][0]
        7
    """

    def __init__(self, path: Path, dimension: int, config: IndexConfig) -> None:
        self.path = path
        self.dimension = dimension
        self.config = config
        self.index: faiss.IndexIDMap2 = self._load() if path.exists() else self._empty(self._wanted_kind(0), 0)
        self.dirty = False

    # ---- kinds --------------------------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        inner = faiss.downcast_index(self.index.index)
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
        return "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"

    def _wanted_kind(self, n: int) -> str:
        if self.config.type != "auto":
            return self.config.type
        return "flat" if n <= self.config.auto_threshold else "hnsw"

    def _empty(self, kind: str, n: int) -> faiss.IndexIDMap2:
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dimension, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 200
        elif kind == "ivf":
            nlist = self.config.ivf_nlist or max(1, int(4 * math.sqrt(max(n, 1))))
            inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dimension), self.dimension, nlist,
                                       faiss.METRIC_INNER_PRODUCT)
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        return faiss.IndexIDMap2(inner)

    def _load(self) -> faiss.IndexIDMap2:
        index = faiss.read_index(str(self.path))
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        return index

    # ---- mutation -----------------------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vector dimension {vectors.shape[1]} != index dimension {self.dimension}")
        wanted = self._wanted_kind(len(self) + len(ids))
        if wanted != self.kind or (self.kind == "ivf" and not self.index.is_trained):
            self._rebuild(wanted, extra=(np.asarray(ids, dtype=np.int64), vectors))
        else:
            self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        self.dirty = True

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        if self.kind != "flat":  # HNSW can't delete, IVF loses its direct map: rebuild from the vectors that stay
            keep = np.setdiff1d(self.ids(), ids)
            before = len(self)
            self._rebuild(self._wanted_kind(len(keep)), keep=keep)
            removed = before - len(self)
        else:
            removed = int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))
        self.dirty = self.dirty or removed > 0
        return removed

    def _rebuild(self, kind: str, keep: np.ndarray | None = None, extra: tuple | None = None) -> None:
        ids = self.ids() if keep is None else keep
        vectors = self.reconstruct(ids) if len(ids) else np.zeros((0, self.dimension), np.float32)
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vectors = np.concatenate([vectors, extra[1]])
        index = self._empty(kind, len(ids))
        if kind == "ivf":
            index.train(vectors)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self.index = index

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.dirty = False

    # ---- reading ------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        if self.kind == "ivf":
            faiss.extract_index_ivf(self.index.index).make_direct_map()
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        for row, i in enumerate(ids):
            try:
                out[row] = self.index.reconstruct(int(i))
            except RuntimeError:  # an id a writer added after this reader loaded the file: leave zeros
                pass
        return out

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query; ``allowed`` restricts the search to those vector ids; -1 pads."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(self) == 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros((len(queries), k), np.float32), np.full((len(queries), k), -1, np.int64)
        return self.index.search(queries, min(k, len(self)), params=self._params(allowed))

    def _params(self, allowed: np.ndarray | None) -> faiss.SearchParameters | None:
        sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        kind = self.kind
        if kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=self.config.hnsw_ef_search)
        if kind == "ivf":
            return faiss.SearchParametersIVF(sel=sel, nprobe=self.config.ivf_nprobe)
        return faiss.SearchParameters(sel=sel) if sel is not None else None
