"""The knowledge-base folder: manifest, SQLite store, FAISS vectors, BM25 index, adapters, and a writer lock.

Layout::

    kb/manifest.json    format version, embedding model + dimension + normalisation, chunking settings
    kb/kb.sqlite        sources, passages, chunks, retrieval log, feedback (WAL mode)
    kb/vectors.faiss    FAISS index keyed by passages.vector_id
    kb/bm25/            bm25s segments
    kb/adapters/        LoRA adapters and the active pointer
    kb/.lock            held by the one writer (ingest, remove, reindex, promotion)

Opening for writing takes the lock and repairs any mismatch a crash left between SQLite and FAISS.
"""

from __future__ import annotations

import fcntl
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.store import PassageStore
from knowledge.vectors import FaissVectorIndex
from rag.config import IndexConfig, RetrievalConfig
from rag.errors import EmptyKnowledgeBaseError, IndexMismatchError, KnowledgeBaseError

FORMAT_VERSION = 1


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


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
        self.store = PassageStore(root / "kb.sqlite")
        self._loaded_stamp = self._stamp()

    # ---- opening ------------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, embedding: dict[str, Any] | None = None, *, write: bool = False,
        create: bool = False, index: IndexConfig | None = None, retrieval: RetrievalConfig | None = None,
    ) -> KnowledgeBase:
        """Open (and with ``create`` make) a KB. ``embedding`` (model, dimension, ...) must match the manifest."""
        root = Path(path).expanduser().resolve()
        manifest_path = root / "manifest.json"
        if not manifest_path.exists():
            if not create:
                raise EmptyKnowledgeBaseError(f"no knowledge base at {root}; run `rag ingest PATH --kb {root}` first")
            if root.exists() and not root.is_dir():
                raise KnowledgeBaseError(f"{root} exists and is not a folder")
            root.mkdir(parents=True, exist_ok=True)
        lock = _take_lock(root) if write else None
        if not manifest_path.exists():
            if embedding is None:
                raise ValueError("creating a knowledge base needs the embedding description")
            write_json_atomic(manifest_path, {"format_version": FORMAT_VERSION, "embedding": embedding})
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        _check_manifest(root, manifest, embedding)
        kb = cls(root, manifest, index or IndexConfig(), retrieval or RetrievalConfig(), lock)
        if write:
            kb.repair()
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
        return FaissVectorIndex(self.root / "vectors.faiss", self.dimension, self.index_config)

    @cached_property
    def bm25(self):  # noqa: ANN201 - knowledge.sparse.BM25Index
        from knowledge.sparse import BM25Index

        return BM25Index(self.root / "bm25", self.retrieval_config, texts_for=self.store.live_texts)

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

        return mtime(self.root / "vectors.faiss"), mtime(self.root / "bm25" / "CURRENT")

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        write_json_atomic(self.root / "manifest.json", self.manifest)

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
        if set(self.bm25.ids()) != live:
            self.bm25.rebuild(self.store.live_texts())
            self.bm25.save()
            rebuilt = 1
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


def _check_manifest(root: Path, manifest: dict[str, Any], embedding: dict[str, Any] | None) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise KnowledgeBaseError(f"{root}: format version {version}, this program reads {FORMAT_VERSION}")
    if embedding is None:
        return
    have = manifest["embedding"]
    for key in ("model", "dimension", "normalize", "passage_prefix"):
        if key in embedding and have.get(key) != embedding[key]:
            raise IndexMismatchError(
                f"{root} was built with embedding {key} = {have.get(key)!r} but {embedding[key]!r} is configured; "
                f"configure the KB's model, or run `rag reindex --kb {root}` to re-embed with the new one"
            )
