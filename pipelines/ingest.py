"""`rag ingest`: sources -> documents -> spaCy chunks -> embeddings -> SQLite + FAISS + BM25, incrementally.

A source whose size, mtime (or content hash) and chunking settings are unchanged is skipped without reading it.
A changed source replaces its chunks; passages are keyed by content hash, so text that did not change keeps its
vector. Vectors are checkpointed (FAISS saved, then SQLite told) every few seconds: a kill at any moment loses at
most the work since the last checkpoint, and the next run picks up the embedding queue where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import stat as stat_kind
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from knowledge.files import display_path, is_clean_name, read_regular_file
from knowledge.formats.common import LOADER_VERSION
from knowledge.kb import KnowledgeBase, embedding_manifest, has_kb
from knowledge.preprocess import Preprocessor
from knowledge.sources import LoadResult, discover, load
from pipelines.config import Settings
from rag.embedding.embed import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError, SourceError


@dataclass
class IngestReport:
    """What one ingest run did. ``passages`` is the KB total afterwards; ``embedded`` the vectors computed now."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    no_text: int = 0
    removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passages: int = 0
    embedded: int = 0
    seconds: float = 0.0
    kb: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


__all__ = ["IngestPipeline", "IngestReport", "collect_garbage", "embedding_manifest"]


class IngestPipeline:
    """Adds sources to a knowledge base.

    Example:
        >>> report = IngestPipeline.from_config(Settings(), kb="kb").run(["knowledge/sample"])
        >>> report.failed
        []
    """

    def __init__(self, settings: Settings, embedder: SentenceTransformerEmbedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or SentenceTransformerEmbedder(settings.embedding)
        self.preprocessor = Preprocessor(settings.preprocess, self.embedder.count_tokens_batch)
        self.progress = settings.ingest.show_progress
        # called with an event name at each step that changes the KB on disk ("file", "vectors_saved",
        # "checkpoint", "bm25_synced", "bm25_saved"): progress reporting, and the kill -9 test harness
        self.on_event: Callable[[str], None] | None = None
        self._bm25_queue: list[str] = []

    @classmethod
    def from_config(cls, settings: Settings | None = None, kb: str | Path | None = None,
                    embedder: SentenceTransformerEmbedder | None = None) -> IngestPipeline:
        settings = settings or Settings()
        if kb is not None:
            settings = settings.override({"kb.path": str(kb)})
        return cls(settings, embedder)

    def open_kb(self) -> KnowledgeBase:
        exists = has_kb(self.settings.kb.path)
        # an existing KB is checked by model name; the model is loaded only when something needs embedding
        manifest = embedding_manifest(self.settings, None if exists else self.embedder.dimension)
        kb = KnowledgeBase.open(self.settings.kb.path, manifest, write=True, create=True,
                                index=self.settings.index, retrieval=self.settings.retrieval)
        if "chunking" not in kb.manifest:
            kb.update_manifest(chunking=self.settings.preprocess.model_dump())
        return kb

    def run(self, paths: Sequence[str | Path], prune: bool = False, exclude: Sequence[str] = ()) -> IngestReport:
        """Ingest files, folders and globs; ``exclude`` adds name or path globs that are never ingested."""
        start = time.perf_counter()
        report = IngestReport()
        found = discover(paths, self.settings.ingest, exclude)
        report.failed += [{"path": p, "error": e} for p, e in found.failed]
        report.skipped += [{"path": p, "reason": r} for p, r in found.skipped]
        with self.open_kb() as kb:
            report.kb = str(kb.root)
            self._bm25_queue = []
            self._ingest_files(kb, found.files, report)
            self._sync_bm25(kb)
            if prune:
                report.removed += self._prune(kb, paths, {display_path(f) for f in found.files})
            collect_garbage(kb)
            kb.bm25.save()
            self._event("bm25_saved")
            kb.update_manifest(chunking=self.settings.preprocess.model_dump(), index_type=kb.vectors.kind)
            report.passages = kb.store.counts()["passages"]
        report.seconds = round(time.perf_counter() - start, 3)
        return report

    def embed_queue(self, kb: KnowledgeBase) -> int:
        """Embed every passage waiting for a vector (checkpointed as in ``run``), sync BM25, and mark the sources
        whose passages are now all embedded as done. Used by `rag repair`."""
        self._bm25_queue = []
        embedded = self._embed_pending(kb)
        self._sync_bm25(kb)
        kb.bm25.save()
        kb.store.mark_done([s.path for s in kb.store.sources() if s.status == "pending"])
        return embedded

    # ---- steps --------------------------------------------------------------------------------------------------

    def _settings_fingerprint(self) -> str:
        data = {"preprocess": self.settings.preprocess.model_dump(), "embedding": self.settings.embedding.model,
                "loaders": LOADER_VERSION}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def _ingest_files(self, kb: KnowledgeBase, files: list[Path], report: IngestReport) -> None:
        fingerprint = self._settings_fingerprint()
        done: list[str] = []
        bar = tqdm(files, desc="files", unit="file", disable=not self.progress)
        for file in bar:
            outcome = self._ingest_file(kb, file, fingerprint, report)
            self._event("file")
            if outcome in ("added", "updated"):
                done.append(display_path(file))
            if outcome != "failed":
                setattr(report, outcome, getattr(report, outcome) + 1)
            if kb.store.pending_count(self.settings.ingest.batch_passages) >= self.settings.ingest.batch_passages:
                report.embedded += self._embed_pending(kb)
                kb.store.mark_done(done)  # their vectors are checkpointed: these sources are complete
                done = []
        report.embedded += self._embed_pending(kb)
        kb.store.mark_done(done)

    def _ingest_file(self, kb: KnowledgeBase, file: Path, fingerprint: str, report: IngestReport) -> str:
        path = display_path(file)
        if not is_clean_name(file):
            report.warnings.append(f"{path}: file name is not valid UTF-8 (or holds control characters); stored and "
                                   f"shown with \\x escapes")
        try:
            info = file.stat()
            state = kb.store.source(path)
            fresh = state is not None and state.status == "done" and state.settings == fingerprint
            if fresh and stat_kind.S_ISREG(info.st_mode) and (state.size, state.mtime) == (info.st_size, info.st_mtime):
                return "unchanged"
            # stat before reading: a FIFO or /dev/zero is refused here instead of hanging the hash
            data, info = read_regular_file(file, self.settings.ingest.max_file_bytes, path)
            digest = hashlib.sha256(data).hexdigest()
            if fresh and state.hash == digest:
                kb.store.touch_source(path, info.st_size, info.st_mtime)
                return "unchanged"
            loaded, passages = self._prepare(file, data)
            report.warnings += [f"{path}: {w}" for w in loaded.warnings]
        except (SourceError, OSError) as exc:
            message = str(exc) if isinstance(exc, SourceError) else f"{path}: {exc.strerror or exc}"
            kb.store.mark_failed(path, message)
            report.failed.append({"path": path, "error": message})
            return "failed"
        embed_texts = [self.preprocessor.embedding_text(p) for p in passages]
        kb.store.replace_source(path, digest, info.st_size, info.st_mtime, fingerprint, passages, embed_texts,
                                len(loaded.documents))
        if not passages:  # no text: recorded as done, so an unchanged file is not read (nor warned about) again
            if loaded.documents and not loaded.warnings:
                report.warnings.append(f"{path}: no text to index")
            kb.store.mark_done([path])
            return "no_text"
        return "updated" if state is not None and state.n_passages > 0 else "added"

    def _prepare(self, file: Path, data: bytes) -> tuple[LoadResult, list]:
        """Parse and chunk one file (``pipelines.ray_ingest`` returns what its Ray workers computed instead)."""
        loaded = load(file, self.settings.ingest, data=data)
        return loaded, self.preprocessor.chunk_documents(loaded.documents)

    def _embed_pending(self, kb: KnowledgeBase) -> int:
        """Embed the queue; checkpoint (FAISS save, then SQLite) every few seconds and at the end."""
        total = kb.store.pending_total()
        if total == 0:
            return 0
        bar = tqdm(total=total, desc="embeddings", unit="passage", disable=not self.progress)
        embedded, staged, last = 0, [], time.monotonic()
        batch = self.settings.ingest.batch_passages
        if self.embedder.dimension != kb.dimension:
            raise IndexMismatchError(f"{kb.root} holds {kb.dimension}-d vectors; {self.embedder.model_id} makes "
                                     f"{self.embedder.dimension}-d ones: run `rag reindex`")
        while rows := kb.store.pending_excluding(batch, {pid for pid, _ in staged}):
            vectors = self.embedder.embed([text for _, text in rows])
            ids = kb.store.next_vector_ids(len(rows))
            kb.vectors.add(np.array(ids, dtype=np.int64), vectors)
            staged += [(pid, vid) for (pid, _), vid in zip(rows, ids, strict=True)]
            embedded += len(rows)
            bar.update(len(rows))
            if time.monotonic() - last > self.settings.ingest.checkpoint_seconds:
                self._checkpoint(kb, staged)
                staged, last = [], time.monotonic()
        self._checkpoint(kb, staged)
        bar.close()
        return embedded

    def _checkpoint(self, kb: KnowledgeBase, staged: list[tuple[str, int]]) -> None:
        if not staged:
            return
        kb.vectors.save()
        self._event("vectors_saved")
        kb.store.assign_vectors(staged)
        self._bm25_queue += [pid for pid, _ in staged]
        self._event("checkpoint")

    def _sync_bm25(self, kb: KnowledgeBase) -> None:
        """Add this run's passages to BM25 in one step (a crash before it is repaired on the next open)."""
        if self._bm25_queue:
            kb.bm25.add(kb.store.embed_texts_for(self._bm25_queue))
            self._bm25_queue = []
            self._event("bm25_synced")

    def _event(self, name: str) -> None:
        if self.on_event is not None:
            self.on_event(name)

    def _prune(self, kb: KnowledgeBase, roots: Sequence[str | Path], seen: set[str]) -> int:
        folders = [Path(r).expanduser().resolve() for r in roots if Path(r).expanduser().is_dir()]
        gone = [s.path for s in kb.store.sources()
                if s.path not in seen and any(Path(s.path).is_relative_to(f) for f in folders)
                and not Path(s.path).exists()]
        return kb.store.delete_sources(gone)


def collect_garbage(kb: KnowledgeBase) -> None:
    """Drop passages no source refers to any more: SQLite first, then FAISS and BM25 (a crash in between only
    leaves stray vectors, which ``KnowledgeBase.repair`` removes)."""
    orphans = kb.store.orphans()
    if not orphans:
        return
    kb.store.delete_passages([pid for pid, _ in orphans])
    vector_ids = np.array([v for _, v in orphans if v is not None], dtype=np.int64)
    if kb.vectors.remove(vector_ids):
        kb.vectors.save()
    kb.bm25.remove([pid for pid, _ in orphans])
