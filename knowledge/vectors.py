"""FAISS vector index persisted in the KB folder: exact (flat), HNSW, IVF or IVF-PQ, keyed by int64 vector ids.

The file is written to a temporary name and renamed, so a crash leaves either the old or the new index.
``auto`` uses exact search up to ``IndexConfig.auto_threshold`` vectors, HNSW up to ``ondisk_threshold`` and
IVF-PQ past it, rebuilding on crossing. IVF-PQ keeps ``pq_m`` bytes per vector; readers open its inverted lists
memory-mapped from the index file (FAISS ``OnDiskInvertedLists``), so a corpus whose vectors exceed RAM is searched
from the page cache. IVF and IVF-PQ are trained once, on a seeded sample of ``train_sample`` vectors.

PQ codes rank coarsely (recall@10 near 0.6 at 48 bytes per vector), so an IVF-PQ index also keeps every vector in
float16 in a sidecar file (``vectors.f16``, row = vector id, read with ``pread``) and re-scores its top
``refine`` candidates exactly. Rows are written when vectors are added, before the index that lists them is saved,
so a saved index never names a row that is not there; rows of removed or never-saved ids are simply never read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from knowledge.config import IndexConfig

KINDS = ("flat", "hnsw", "ivf", "ivfpq")


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
        self._mapped = False  # True while the inverted lists are memory-mapped (read-only) from the file
        self.index: faiss.Index = self._load() if path.exists() else self._empty(self._wanted_kind(0), 0)
        self.dirty = False

    @property
    def sidecar(self) -> Path:
        """Exact float16 vectors of an IVF-PQ index, one row per vector id."""
        return self.path.with_suffix(".f16")

    def move_to(self, path: Path) -> None:
        """Rename the saved index (and its sidecar) to ``path``, atomically each."""
        if self.sidecar.exists():
            os.replace(self.sidecar, path.with_suffix(".f16"))
        else:  # the index it replaces may have had one
            path.with_suffix(".f16").unlink(missing_ok=True)
        os.replace(self.path, path)
        self.path = path

    # ---- kinds --------------------------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        if isinstance(self.index, faiss.IndexIVFPQ):
            return "ivfpq"
        inner = faiss.downcast_index(self.index.index)
        if isinstance(inner, faiss.IndexHNSW):
            return "hnsw"
        return "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"

    def _wanted_kind(self, n: int) -> str:
        if self.config.type != "auto":
            return self.config.type
        if n <= self.config.auto_threshold:
            return "flat"
        return "hnsw" if n <= self.config.ondisk_threshold else "ivfpq"

    def _nlist(self, n: int) -> int:
        # FAISS wants ~39 training points per centroid; a small forced IVF gets fewer lists rather than bad ones
        wanted = self.config.ivf_nlist or int(4 * math.sqrt(max(n, 1)))
        return max(1, min(wanted, min(n, self.config.train_sample) // 39))

    def _pq_m(self) -> int:
        m = self.config.pq_m or max(1, self.dimension // 8)
        if self.dimension % m:
            raise ValueError(f"index.pq_m = {m} must divide the vector dimension {self.dimension}")
        return m

    def _empty(self, kind: str, n: int) -> faiss.Index:
        if kind == "ivfpq":
            # 8 bits per sub-quantizer; fewer for tiny forced indexes (k-means needs more points than centroids)
            nbits = min(8, max(1, int(math.log2(max(min(n, self.config.train_sample), 2)))))
            return faiss.IndexIVFPQ(faiss.IndexFlatIP(self.dimension), self.dimension, self._nlist(n),
                                    self._pq_m(), nbits, faiss.METRIC_INNER_PRODUCT)
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dimension, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 200
        elif kind == "ivf":
            inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dimension), self.dimension, self._nlist(n),
                                       faiss.METRIC_INNER_PRODUCT)
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        return faiss.IndexIDMap2(inner)

    def _load(self) -> faiss.Index:
        # IO_FLAG_MMAP maps IVF inverted lists from the file instead of reading them (no effect on flat/HNSW)
        index = faiss.read_index(str(self.path), faiss.IO_FLAG_MMAP)  # SWIG returns the concrete class
        self._mapped = isinstance(index, faiss.IndexIVFPQ)
        return index

    def _writable(self) -> None:
        """Mapped lists are read-only: a writer reads the file into memory before changing it."""
        if self._mapped:
            self.index = faiss.read_index(str(self.path))
            self._mapped = False

    # ---- mutation -----------------------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vector dimension {vectors.shape[1]} != index dimension {self.dimension}")
        self._writable()
        ids = np.asarray(ids, dtype=np.int64)
        wanted = self._wanted_kind(len(self) + len(ids))
        if wanted != self.kind or (self.kind in ("ivf", "ivfpq") and not self.index.is_trained):
            self._rebuild(wanted, extra=(ids, vectors))
        else:
            # never start a sidecar beside an index that has vectors without rows: holes would score 0
            if self.kind == "ivfpq" and self.config.refine and (self.sidecar.exists() or len(self) == 0):
                self._write_rows(ids, vectors)
            self.index.add_with_ids(vectors, ids)
        self.dirty = True

    def _write_rows(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Put ``vectors`` (float16) at rows ``ids`` of the sidecar, growing it as needed."""
        row = 2 * self.dimension
        data = vectors.astype(np.float16)
        order = np.argsort(ids)
        ids, data = ids[order], data[order]
        fd = os.open(self.sidecar, os.O_RDWR | os.O_CREAT, 0o644)  # not O_APPEND: Linux pwrite would append
        try:
            starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 2) != 1)  # runs of consecutive ids
            for a, b in zip(starts, [*starts[1:], len(ids)], strict=True):
                os.pwrite(fd, data[a:b].tobytes(), int(ids[a]) * row)
        finally:
            os.close(fd)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        self._writable()
        before = len(self)
        wanted = self._wanted_kind(before - len(np.intersect1d(self.ids(), ids)))
        if self.kind == "ivfpq" and wanted == "ivfpq":  # IVF lists delete in place; PQ codes can't be rebuilt
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        elif self.kind != "flat" or wanted != "flat":  # HNSW can't delete, IVF loses its direct map: rebuild
            self._rebuild(wanted, keep=np.setdiff1d(self.ids(), ids))
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        removed = before - len(self)
        self.dirty = self.dirty or removed > 0
        return removed

    def _rebuild(self, kind: str, keep: np.ndarray | None = None, extra: tuple | None = None) -> None:
        ids = self.ids() if keep is None else keep
        vectors = self.reconstruct(ids) if len(ids) else np.zeros((0, self.dimension), np.float32)
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vectors = np.concatenate([vectors, extra[1]])
        index = self._empty(kind, len(ids))
        if kind in ("ivf", "ivfpq") and len(ids):
            index.train(self._training_sample(vectors))
        if len(ids):
            if kind == "ivfpq":
                self.sidecar.unlink(missing_ok=True)
                if self.config.refine:
                    self._write_rows(ids, vectors)
            index.add_with_ids(vectors, ids)
        self.index = index

    def _training_sample(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) <= self.config.train_sample:
            return vectors
        rows = np.random.default_rng(0).choice(len(vectors), self.config.train_sample, replace=False)
        return vectors[np.sort(rows)]

    def save(self) -> None:
        if self.sidecar.exists():  # its rows first: the saved index must never list a row that is not on disk
            with open(self.sidecar, "rb+") as fh:
                os.fsync(fh.fileno())
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
        if self.kind != "ivfpq":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.index.nlist) if lists.list_size(i)]
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors by id (IVF-PQ: the exact sidecar rows, else the PQ approximation); unknown ids: zeros."""
        exact = self._exact_rows(np.asarray(ids, dtype=np.int64)) if self.kind == "ivfpq" else None
        if exact is not None:
            return exact
        if self.kind == "ivfpq":
            self.index.set_direct_map_type(faiss.DirectMap.Hashtable)
        elif self.kind == "ivf":
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
        k = min(k, len(self))
        if self.kind != "ivfpq" or self.config.refine <= k:
            return self.index.search(queries, k, params=self._params(allowed))
        scores, ids = self.index.search(queries, min(self.config.refine, len(self)), params=self._params(allowed))
        return self._rescore(queries, scores, ids, k)

    def _rescore(self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of each query's PQ candidates from the sidecar; PQ order when it lacks a row."""
        out_s, out_i = np.zeros((len(queries), k), np.float32), np.full((len(queries), k), -1, np.int64)
        for q, (row_s, row_i) in enumerate(zip(scores, ids, strict=True)):
            found = row_i[row_i >= 0]
            exact = self._exact_rows(found)
            if exact is None:  # an index written before the sidecar existed, or a row a writer is still adding
                out_s[q, : len(found[:k])], out_i[q, : len(found[:k])] = row_s[: len(found)][:k], found[:k]
                continue
            s = exact @ queries[q]
            top = np.argsort(-s, kind="stable")[:k]
            out_s[q, : len(top)], out_i[q, : len(top)] = s[top], found[top]
        return out_s, out_i

    def _exact_rows(self, ids: np.ndarray) -> np.ndarray | None:
        """float32 rows of ``ids`` from the sidecar; None when it is missing or does not reach every id.

        ``pread`` per row, not a memory map: mapped pages (and the kernel's fault-around neighbours) would count as
        this reader's RSS; read, they stay in the page cache, shared and reclaimable. 100 rows take ~0.2 ms.
        """
        if not len(ids):
            return np.zeros((0, self.dimension), np.float32)
        row = 2 * self.dimension
        try:
            fd = os.open(self.sidecar, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if os.fstat(fd).st_size < (int(ids.max()) + 1) * row:
                return None
            data = b"".join(os.pread(fd, row, int(i) * row) for i in ids)
        finally:
            os.close(fd)
        return np.frombuffer(data, dtype=np.float16).reshape(len(ids), self.dimension).astype(np.float32)

    def _params(self, allowed: np.ndarray | None) -> faiss.SearchParameters | None:
        sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        kind = self.kind
        if kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=self.config.hnsw_ef_search)
        if kind in ("ivf", "ivfpq"):
            return faiss.SearchParametersIVF(sel=sel, nprobe=self.config.ivf_nprobe)
        return faiss.SearchParameters(sel=sel) if sel is not None else None

    def memory_estimate(self, n: int | None = None, kind: str | None = None) -> dict[str, int | str]:
        """Bytes this index needs in RAM and on disk for ``n`` vectors (default: its own size and kind)."""
        return estimate_memory(kind or self.kind, len(self) if n is None else n, self.dimension, self.config)


def estimate_memory(kind: str, n: int, dimension: int, config: IndexConfig) -> dict[str, int | str]:
    """A planning estimate: ``ram_bytes`` resident for search, ``disk_bytes`` of the index file.

    Flat and HNSW hold every float32 vector in RAM (HNSW adds ~2·M links of 4 bytes per vector); IVF adds the
    centroids. IVF-PQ keeps only the centroids and codebooks resident: its codes (``pq_m`` bytes) and ids
    (8 bytes) per vector are mapped from disk and paged in as lists are probed.
    """
    ids = 16 * n  # IndexIDMap2's id array plus its reverse hash map, roughly
    vec = 4 * dimension * n
    nlist = config.ivf_nlist or int(4 * math.sqrt(max(n, 1)))
    if kind == "ivfpq":
        m = config.pq_m or max(1, dimension // 8)
        resident = 4 * dimension * nlist + 4 * 256 * dimension
        exact = 2 * dimension * n if config.refine else 0  # the float16 sidecar, paged in for re-scoring only
        return {"kind": kind, "vectors": n, "ram_bytes": resident, "disk_bytes": resident + (m + 8) * n + exact}
    ram = vec + ids + (8 * config.hnsw_m * n if kind == "hnsw" else 0) + (4 * dimension * nlist if kind == "ivf" else 0)
    return {"kind": kind, "vectors": n, "ram_bytes": ram, "disk_bytes": ram - 8 * n}
