"""Knowledge-base maintenance: `rag remove`, `rag status`, `rag reindex`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from knowledge.kb import KnowledgeBase
from knowledge.vectors import FaissVectorIndex
from pipelines.ingest import collect_garbage, embedding_manifest
from rag.config import Settings
from rag.embed import SentenceTransformerEmbedder


def remove_sources(settings: Settings, paths: Sequence[str | Path]) -> dict[str, object]:
    """Remove sources (files, or every source under a folder) and their passages, vectors and BM25 entries."""
    with KnowledgeBase.open(settings.kb.path, write=True, index=settings.index, retrieval=settings.retrieval) as kb:
        targets = [Path(p).expanduser().resolve() for p in paths]
        known = [s.path for s in kb.store.sources()]
        gone = [s for s in known if any(Path(s) == t or Path(s).is_relative_to(t) for t in targets)]
        missing = [str(t) for t in targets if not any(Path(s) == t or Path(s).is_relative_to(t) for s in known)]
        removed = kb.store.delete_sources(gone)
        collect_garbage(kb)
        kb.bm25.save()
        return {"removed": removed, "not_found": missing, "passages": kb.store.counts()["passages"]}


def status(settings: Settings) -> dict[str, object]:
    """Counts and settings of the KB; read-only, safe while an ingest runs."""
    with KnowledgeBase.open(settings.kb.path, index=settings.index, retrieval=settings.retrieval) as kb:
        counts = kb.store.counts()
        failed = [{"path": s.path, "error": s.error} for s in kb.store.sources() if s.status == "failed"]
        return {
            "kb": str(kb.root),
            "sources": counts["sources"],
            "documents": counts["documents"],
            "passages": counts["passages"],
            "pending_embeddings": counts["passages"] - counts["embedded"],
            "vectors": len(kb.vectors),
            "embedding_model": kb.manifest["embedding"]["model"],
            "dimension": kb.dimension,
            "index_type": kb.vectors.kind,
            "index_ram_estimate_bytes": kb.vectors.memory_estimate()["ram_bytes"],
            "disk_bytes": kb.disk_bytes(),
            "failed": failed,
        }


def reindex(settings: Settings, show_progress: bool = True) -> dict[str, object]:
    """Re-embed every passage with the configured embedding model and switch the KB to it."""
    start = time.perf_counter()
    embedder = SentenceTransformerEmbedder(settings.embedding)
    with KnowledgeBase.open(settings.kb.path, write=True, index=settings.index, retrieval=settings.retrieval) as kb:
        rows = list(kb.store.embed_texts())
        tmp = kb.root / "vectors.reindex.faiss"
        index = FaissVectorIndex(tmp, embedder.dimension, settings.index)
        for i in tqdm(range(0, len(rows), 1024), desc="re-embedding", disable=not show_progress):
            chunk = rows[i : i + 1024]
            index.add(np.array([v for _, v, _ in chunk], dtype=np.int64), embedder.embed([t for _, _, t in chunk]))
        index.save()
        tmp.replace(kb.root / "vectors.faiss")
        kb.update_manifest(embedding=embedding_manifest(settings, embedder.dimension), index_type=index.kind)
        return {"passages": len(rows), "embedding_model": settings.embedding.model,
                "seconds": round(time.perf_counter() - start, 3)}
