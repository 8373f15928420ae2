"""The knowledge-base folder: manifest, SQLite store, FAISS vectors, BM25 index, adapters, and a writer lock.

Layout::

    kb/manifest.json    format version, embedding model + dimension + normalisation, chunking settings
    kb/kb.sqlite        sources, passages, chunks, retrieval log, feedback (WAL mode)
    kb/vectors.faiss    FAISS index keyed by passages.vector_id
    kb/vectors.f16      IVF-PQ only: every vector in float16, row = vector_id, for exact re-scoring
    kb/bm25/            bm25s segments
    kb/adapters/        LoRA adapters and the active pointer
    kb/.lock            held by the one writer (ingest, remove, reindex, promotion)

Opening for writing takes the lock and repairs any mismatch a crash left between SQLite and FAISS. A damaged or
missing file is never rebuilt silently: opening raises ``KnowledgeBaseError`` naming the file and `rag repair`
(``knowledge.health`` checks and repairs). Readers whose BM25 is behind the embedded passages (an ingest killed
before it synced BM25) rebuild it in memory, so both retrievers always see the same passages.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.config import IndexConfig, KBSettings
from knowledge.files import read_json, write_json_atomic
from knowledge.store import PassageStore
from knowledge.vectors import FaissVectorIndex
from rag.config import RetrievalConfig
from rag.errors import EmptyKnowledgeBaseError, IndexMismatchError, KnowledgeBaseError

FORMAT_VERSION = 1
MANIFEST, DATABASE, VECTORS, BM25_DIR = "manifest.json", "kb.sqlite", "vectors.faiss", "bm25"
__all__ = ["FORMAT_VERSION", "KnowledgeBase", "embedding_manifest", "release_lock", "take_lock", "write_json_atomic"]


def embedding_manifest(settings: KBSettings, dimension: int | None = None) -> dict:
    """The ``embedding`` entry a KB built with ``settings`` records (and that opening it checks)."""
    cfg = settings.embedding
    out = {"model": cfg.model, "normalize": True, "passage_prefix": cfg.passage_prefix,
           "query_prefix": cfg.query_prefix}
    if dimension is not None:
        out["dimension"] = dimension
    return out


def has_kb(path: str | Path) -> bool:
    """Whether ``path`` holds a knowledge base (its manifest)."""
    return (Path(path).expanduser() / MANIFEST).exists()


def repair_hint(root: Path) -> str:
    return f"run `rag check --kb {root}` for details and `rag repair --kb {root}` to rebuild (it keeps a copy)"


class KnowledgeBase:
    """A knowledge base on disk. Use ``KnowledgeBase.open(...)``; close it (or use ``with``) when done.

    Example:
        >>> with KnowledgeBase.open("kb", embedding={"model": "m", "dimension": 384}, write=True) as kb:
        ...     kb.store.counts()["passages"]
        0
    """

    def __init__(self, root: Path, manifest: dict[str, Any], index_config: IndexConfig,
                 retrieval_config: RetrievalConfig, lock: int | None) -> None:
        self.root = root
        self.manifest = manifest
        self.index_config = index_config
        self.retrieval_config = retrieval_config
        self._lock = lock
        self._bm25_rebuilt = False
        self.store = open_store(root)
        self._loaded_stamp = self._stamp()

    # ---- opening ------------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, embedding: dict[str, Any] | None = None, *, write: bool = False,
        create: bool = False, index: IndexConfig | None = None, retrieval: RetrievalConfig | None = None,
    ) -> KnowledgeBase:
        """Open (and with ``create`` make) a KB. ``embedding`` (model, dimension, ...) must match the manifest."""
        root = Path(path).expanduser().resolve()
        manifest_path = root / MANIFEST
        if not manifest_path.exists() and (root / DATABASE).exists():  # a KB whose manifest was lost
            raise KnowledgeBaseError(f"{manifest_path} is missing but {root / DATABASE} exists; {repair_hint(root)}")
        if not manifest_path.exists():
            if not create:
                raise EmptyKnowledgeBaseError(f"no knowledge base at {root}; run `rag ingest PATH --kb {root}` first")
            if root.exists() and not root.is_dir():
                raise KnowledgeBaseError(f"{root} exists and is not a folder")
            root.mkdir(parents=True, exist_ok=True)
        lock = _take_lock(root) if write else None
        try:
            if not manifest_path.exists():
                if embedding is None:
                    raise ValueError("creating a knowledge base needs the embedding description")
                write_json_atomic(manifest_path, {"format_version": FORMAT_VERSION, "embedding": embedding})
            manifest = read_manifest(root)
            _check_manifest(root, manifest, embedding)
            kb = cls(root, manifest, index or IndexConfig(), retrieval or RetrievalConfig(), lock)
        except BaseException:
            if lock is not None:
                release_lock(lock)
            raise
        if write:
            try:
                kb.repair()
            except BaseException:
                kb.close()
                raise
        return kb

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()
        if self._lock is not None:
            release_lock(self._lock)
            self._lock = None

    # ---- parts --------------------------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedding"]["dimension"])

    @cached_property
    def vectors(self) -> FaissVectorIndex:
        return open_vectors(self.root, self.dimension, self.index_config, self.store)

    @cached_property
    def bm25(self):  # noqa: ANN201 - knowledge.sparse.BM25Index
        index = open_bm25(self.root, self.retrieval_config, self.store)
        if len(index) != self.store.embedded_total():
            # an ingest was killed after its last vector checkpoint and before it synced BM25: rebuild in memory
            # so that both retrievers see the same passages (a writer saves the rebuilt index in ``repair``)
            index.rebuild(self.store.live_texts())
            self._bm25_rebuilt = True
        return index

    def new_vector_index(self, dimension: int) -> FaissVectorIndex:
        """An empty FAISS index beside the live one; ``install_vectors`` swaps it in (``rag reindex``)."""
        tmp = self.root / "vectors.new.faiss"
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".f16").unlink(missing_ok=True)
        return FaissVectorIndex(tmp, dimension, self.index_config)

    def install_vectors(self, index: FaissVectorIndex) -> None:
        """Save ``index`` and atomically make it the KB's vector index."""
        index.save()
        index.move_to(self.root / VECTORS)
        self.__dict__["vectors"] = index

    def refresh(self) -> bool:
        """For long-lived readers: reload FAISS and BM25 when a writer saved new versions (both are replaced
        atomically, so a reader sees either the old or the new file). Returns True when something was reloaded."""
        stamp = self._stamp()
        if stamp == self._loaded_stamp:
            return False
        self.__dict__.pop("vectors", None)
        self.__dict__.pop("bm25", None)
        self._loaded_stamp = stamp
        return True

    def _stamp(self) -> tuple[int, int]:
        def mtime(path: Path) -> int:
            return path.stat().st_mtime_ns if path.exists() else 0

        return mtime(self.root / VECTORS), mtime(self.root / BM25_DIR / "CURRENT")

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        write_json_atomic(self.root / MANIFEST, self.manifest)

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    # ---- consistency --------------------------------------------------------------------------------------------

    def repair(self) -> dict[str, int]:
        """Make SQLite and FAISS agree after a crash: drop vectors without passages, re-queue passages without
        vectors, and rebuild BM25 when it does not hold exactly the embedded passages."""
        in_sql = self.store.vector_map()
        in_faiss = set(self.vectors.ids().tolist())
        stray = np.array(sorted(in_faiss - in_sql.keys()), dtype=np.int64)
        lost = sorted(set(in_sql) - in_faiss)
        if len(stray):
            self.vectors.remove(stray)
            self.vectors.save()
        if lost:
            self.store.clear_vectors(lost)
        live = set(in_sql.values()) - {in_sql[v] for v in lost}
        rebuilt = 0
        if set(self.bm25.ids()) != live or self._bm25_rebuilt:
            if set(self.bm25.ids()) != live:
                self.bm25.rebuild(self.store.live_texts())
            self.bm25.save()
            rebuilt, self._bm25_rebuilt = 1, False
        return {"stray_vectors": len(stray), "requeued_passages": len(lost), "bm25_rebuilt": rebuilt}


def take_lock(path: Path, busy_message: str) -> int:
    """An exclusive, non-blocking lock on ``path`` (released when the process dies, even by kill -9)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise KnowledgeBaseError(busy_message) from None
    return fd


def release_lock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _take_lock(root: Path) -> int:
    return take_lock(root / ".lock", f"{root} is being written by another process (ingest, remove or reindex)")


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest, checked for what every reader needs; a bad one raises ``KnowledgeBaseError`` naming it."""
    path = root / MANIFEST
    manifest = read_json(path, "the knowledge-base manifest", repair_hint(root))
    if not isinstance(manifest, dict):
        raise KnowledgeBaseError(f"{path}: expected a JSON object; {repair_hint(root)}")
    emb = manifest.get("embedding")
    if not isinstance(emb, dict) or not isinstance(emb.get("model"), str) or not isinstance(emb.get("dimension"), int):
        raise KnowledgeBaseError(f"{path}: no valid 'embedding' entry (model and dimension); {repair_hint(root)}")
    return manifest


def open_store(root: Path) -> PassageStore:
    """The SQLite store; a missing, empty or damaged ``kb.sqlite`` under a manifest raises, naming the file."""
    path = root / DATABASE
    if path.exists() and path.stat().st_size == 0 or not path.exists() and (root / VECTORS).exists():
        what = "is empty (0 bytes)" if path.exists() else "is missing"
        raise KnowledgeBaseError(f"{path} {what}: the passages, sources and ask log are gone; restore it from a "
                                 f"backup, or {repair_hint(root)} and ingest your sources again")
    try:
        store = PassageStore(path)
        store.conn.execute("SELECT COUNT(*) FROM passages").fetchone()
    except sqlite3.DatabaseError as exc:
        raise KnowledgeBaseError(f"{path} is damaged ({exc}); {repair_hint(root)}") from None
    return store


def open_vectors(root: Path, dimension: int, config: IndexConfig, store: PassageStore) -> FaissVectorIndex:
    """The FAISS index; a missing file while SQLite records vectors, or an unreadable one, raises."""
    path = root / VECTORS
    if not path.exists() and store.embedded_total():
        raise KnowledgeBaseError(f"{path} is missing but {root / DATABASE} records {store.embedded_total()} "
                                 f"embedded passages; {repair_hint(root)}")
    try:
        index = FaissVectorIndex(path, dimension, config)
    except RuntimeError as exc:  # FAISS raises RuntimeError for truncated or foreign files
        raise KnowledgeBaseError(f"{path} is damaged (FAISS cannot read it: truncated or not an index; "
                                 f"{type(exc).__name__}); {repair_hint(root)}") from None
    if index.dimension != dimension or index.index.d != dimension:
        raise KnowledgeBaseError(f"{path} holds {index.index.d}-d vectors but the manifest says {dimension}; "
                                 f"{repair_hint(root)}")
    return index


def open_bm25(root: Path, config: RetrievalConfig, store: PassageStore):  # noqa: ANN201 - BM25Index
    """The BM25 index; a damaged ``bm25/CURRENT`` or version folder raises, naming the file."""
    from knowledge.sparse import BM25Index  # noqa: PLC0415 - bm25s is only needed when BM25 is used

    folder = root / BM25_DIR
    try:
        return BM25Index(folder, config, texts_for=store.live_texts)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        name = getattr(exc, "filename", None) or folder / "CURRENT"
        reason = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise KnowledgeBaseError(f"{name}: BM25 index is damaged ({type(exc).__name__}: {reason}); "
                                 f"{repair_hint(root)}") from None


def _check_manifest(root: Path, manifest: dict[str, Any], embedding: dict[str, Any] | None) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise KnowledgeBaseError(f"{root / MANIFEST}: format version {version}, this program reads {FORMAT_VERSION}")
    if embedding is None:
        return
    have = manifest["embedding"]
    for key in ("model", "dimension", "normalize", "passage_prefix"):
        if key in embedding and have.get(key) != embedding[key]:
            raise IndexMismatchError(
                f"{root} was built with embedding {key} = {have.get(key)!r} but {embedding[key]!r} is configured; "
                f"configure the KB's model, or run `rag reindex --kb {root}` to re-embed with the new one"
            )
