"""`rag ingest --engine ray`: Ray Data reads, parses, chunks and embeds files in parallel tasks; the driver's
``IngestPipeline`` commits the results to the KB exactly as a local ingest would.

Only files whose size or mtime changed go to Ray. Results stream back in file order; the driver's per-file logic
(hash check, failure records, passage replacement, checkpoints, BM25, garbage collection) is the local one, so the
KB holds the same passage ids and, within floating-point tolerance, the same vectors as a local ingest. Vectors
computed on workers are used when the driver embeds its queue; anything else (passages re-queued by a crash
repair) is embedded locally.

Example:
    >>> report = RayIngestPipeline(Settings(), address="auto").run(["docs/"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import stat as stat_kind
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.files import display_path
from knowledge.kb import KnowledgeBase
from knowledge.sources import LoadResult
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline, IngestReport
from rag.errors import SourceError
from rag.types import Block, Document, Passage

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def init_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Connect to ``address`` ('auto' = the running cluster) or start a local Ray; a no-op when already started."""
    try:
        import ray
    except ImportError:
        raise ValueError("--engine ray needs Ray: pip install 'rag-knowledge[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or None, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": OFFLINE})
    return ray


class _PrepareFiles:
    """A Ray Data actor: its own embedder and preprocessor; each batch of paths -> parsed, chunked, embedded."""

    def __init__(self, settings_json: str) -> None:
        os.environ.update(OFFLINE)
        from knowledge.preprocess import Preprocessor
        from rag.embedding.embed import SentenceTransformerEmbedder

        self.settings = Settings.model_validate_json(settings_json)
        self.embedder = SentenceTransformerEmbedder(self.settings.embedding)
        self.preprocessor = Preprocessor(self.settings.preprocess, self.embedder.count_tokens_batch)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {"path": [], "error": [], "payload": [], "vectors": []}
        for path in batch["path"]:
            out["path"].append(str(path))
            try:
                payload, vectors = self._one(Path(str(path)))
                out["error"].append("")
            except (SourceError, OSError) as exc:
                payload, vectors = "", np.zeros((0, 0), np.float32)
                out["error"].append(str(exc) if isinstance(exc, SourceError) else f"{path}: {exc.strerror or exc}")
            out["payload"].append(payload)
            out["vectors"].append(vectors.astype(np.float32).tobytes())
        return out

    def _one(self, file: Path) -> tuple[str, np.ndarray]:
        from knowledge.files import read_regular_file
        from knowledge.sources import load

        data, _ = read_regular_file(file, self.settings.ingest.max_file_bytes, display_path(file))
        loaded = load(file, self.settings.ingest, data=data)
        passages = self.preprocessor.chunk_documents(loaded.documents)
        texts = [self.preprocessor.embedding_text(p) for p in passages]
        payload = {"documents": [asdict(d) for d in loaded.documents], "warnings": loaded.warnings,
                   "passages": [asdict(p) for p in passages], "texts": texts}
        return json.dumps(payload, default=str), self.embedder.embed(texts)


class _CachedEmbedder:
    """The driver's embedder, answering from the vectors the workers computed (each text used once)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        rows = [self.cache.pop(t, None) for t in texts]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing], **kwargs)
            for i, vector in zip(missing, fresh, strict=True):
                rows[i] = vector
        return np.stack(rows).astype(np.float32) if rows else self.inner.embed([], **kwargs)


class RayIngestPipeline(IngestPipeline):
    """``IngestPipeline`` whose parsing, chunking and embedding run as Ray Data tasks."""

    def __init__(self, settings: Settings, address: str | None = None, embedder: Any = None,
                 num_cpus: int | None = None) -> None:
        super().__init__(settings, embedder)
        self.embedder = _CachedEmbedder(self.embedder)
        self.address, self.num_cpus = address, num_cpus
        self._rows: Iterator[dict[str, Any]] = iter(())
        self._ready: dict[str, dict[str, Any]] = {}

    def run(self, paths: Sequence[str | Path], prune: bool = False, exclude: Sequence[str] = ()) -> IngestReport:
        init_ray(self.address, self.num_cpus)
        return super().run(paths, prune=prune, exclude=exclude)

    def _ingest_files(self, kb: KnowledgeBase, files: list[Path], report: IngestReport) -> None:
        fingerprint = self._settings_fingerprint()
        stale = [f for f in files if not _unchanged(kb, f, fingerprint)]
        self._rows = iter(self._dataset(stale).iter_rows()) if stale else iter(())
        try:
            super()._ingest_files(kb, files, report)
        finally:
            self._rows, self._ready = iter(()), {}
            self.embedder.cache.clear()

    def _dataset(self, files: list[Path]) -> Any:
        import ray

        ray.data.DataContext.get_current().execution_options.preserve_order = True
        workers = max(1, min(len(files), int(ray.cluster_resources().get("CPU", 1))))
        return ray.data.from_items([{"path": str(f)} for f in files]).map_batches(
            _PrepareFiles, fn_constructor_args=(self.settings.model_dump_json(),), batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, batch_format="numpy")

    def _prepare(self, file: Path, data: bytes) -> tuple[LoadResult, list[Passage]]:
        key = str(file)
        while key not in self._ready:
            row = next(self._rows, None)
            if row is None:  # not sent to Ray (e.g. touched between the stat check and now): do it here
                return super()._prepare(file, data)
            self._ready[row["path"]] = row
        row = self._ready.pop(key)
        if row["error"]:
            raise SourceError(row["error"])
        payload = json.loads(row["payload"])
        vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(payload["texts"]), -1)
        self.embedder.cache.update(zip(payload["texts"], vectors, strict=True))
        documents = [_document(d) for d in payload["documents"]]
        return LoadResult(documents, payload["warnings"]), [Passage(**p) for p in payload["passages"]]


def _document(d: dict[str, Any]) -> Document:
    return Document(d["doc_id"], d["source"], d["title"], tuple(Block(**b) for b in d["blocks"]), d["metadata"])


def _unchanged(kb: KnowledgeBase, file: Path, fingerprint: str) -> bool:
    """The local ingest's cheap test: a done source with the same settings, size and mtime is not read at all."""
    state = kb.store.source(display_path(file))
    try:
        info = file.stat()
    except OSError:
        return False
    return (state is not None and state.status == "done" and state.settings == fingerprint
            and stat_kind.S_ISREG(info.st_mode)
            and (state.size, state.mtime) == (info.st_size, info.st_mtime))
