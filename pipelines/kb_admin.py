"""Knowledge-base maintenance: `rag remove`, `rag status`, `rag reindex`, `rag check`, `rag repair`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from knowledge.files import display_path
from knowledge.health import CheckReport, check, repair_files
from knowledge.kb import KnowledgeBase, embedding_manifest, open_bm25
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline, collect_garbage
from rag.embedding.embed import SentenceTransformerEmbedder


def _open(settings: Settings, write: bool = False) -> KnowledgeBase:
    return KnowledgeBase.open(settings.kb.path, write=write, index=settings.index, retrieval=settings.retrieval)


def removal_targets(paths: Sequence[str | Path]) -> list[str]:
    """The resolved display paths to remove. Raises ``ValueError`` for an empty path or the filesystem root,
    which would match every source."""
    targets = []
    for raw in paths:
        if not str(raw).strip():
            raise ValueError("an empty source path would remove every source; name a file or a folder")
        target = Path(raw).expanduser().resolve()
        if target == Path(target.anchor):
            raise ValueError(f"'{raw}' is the filesystem root and would remove every source; name a file or folder")
        targets.append(display_path(target))
    return targets


def plan_removal(known: Sequence[str], paths: Sequence[str | Path]) -> tuple[list[str], list[str], list[str]]:
    """``(sources to remove, targets matching nothing, sources matched only through a folder)``."""
    targets = removal_targets(paths)
    exact = [s for s in known if s in targets]
    under = [s for s in known if s not in exact and any(s.startswith(t.rstrip("/") + "/") for t in targets)]
    missing = [t for t in targets if t not in exact and not any(s.startswith(t.rstrip("/") + "/") for s in known)]
    return exact + under, missing, under


def remove_sources(settings: Settings, paths: Sequence[str | Path], *, confirmed: bool = True,
                   dry_run: bool = False) -> dict[str, object]:
    """Remove sources (files, or every source under a folder) and their passages, vectors and BM25 entries.

    More than one source matched through a folder (not named exactly) is removed only when ``confirmed``;
    otherwise, and with ``dry_run``, nothing is removed and ``would_remove`` lists what would go.
    """
    removal_targets(paths)  # refuse "" and "/" before touching the KB
    with _open(settings, write=not dry_run) as kb:
        gone, missing, under = plan_removal([s.path for s in kb.store.sources()], paths)
        if dry_run or (len(under) > 1 and not confirmed):
            return {"removed": 0, "would_remove": gone, "not_found": missing, "needs_confirmation": not dry_run,
                    "passages": kb.store.counts()["passages"]}
        removed = kb.store.delete_sources(gone)
        collect_garbage(kb)
        kb.bm25.save()
        return {"removed": removed, "would_remove": [], "not_found": missing, "needs_confirmation": False,
                "passages": kb.store.counts()["passages"]}


def status(settings: Settings) -> dict[str, object]:
    """Counts and settings of the KB; read-only, safe while an ingest runs. ``warnings`` lists count mismatches."""
    with _open(settings) as kb:
        counts = kb.store.counts()
        failed = [{"path": s.path, "error": s.error} for s in kb.store.sources() if s.status == "failed"]
        vectors = len(kb.vectors)
        bm25 = len(open_bm25(kb.root, settings.retrieval, kb.store))
        return {
            "kb": str(kb.root),
            "sources": counts["sources"],
            "documents": counts["documents"],
            "passages": counts["passages"],
            "pending_embeddings": counts["passages"] - counts["embedded"],
            "vectors": vectors,
            "embedding_model": kb.manifest["embedding"]["model"],
            "dimension": kb.dimension,
            "index_type": kb.vectors.kind,
            "index_ram_estimate_bytes": kb.vectors.memory_estimate()["ram_bytes"],
            "disk_bytes": kb.disk_bytes(),
            "failed": failed,
            "warnings": _count_warnings(kb.root, counts["embedded"], vectors, bm25),
            "generation": generation_status(settings),
        }


def generation_status(settings: Settings) -> dict[str, object]:
    """Which backend and (for llama.cpp) which GGUF type answer, as ``auto`` resolves them on this CPU."""
    from rag.generation.backends import chosen_backend
    from rag.generation.gguf import chosen_gguf_type
    from rag.models import cpu_has_fast_bf16

    backend = chosen_backend(settings.generation.backend)
    out: dict[str, object] = {"backend": backend, "model": settings.generation.model, "cpu_bf16": cpu_has_fast_bf16()}
    if backend == "llamacpp":
        out["gguf_type"] = chosen_gguf_type(settings.generation.gguf_type)
    return out


def _count_warnings(root: Path, embedded: int, vectors: int, bm25: int) -> list[str]:
    out = []
    if vectors != embedded:
        out.append(f"{root / 'vectors.faiss'} holds {vectors} vectors but {embedded} passages are embedded "
                   f"(an ingest may be running; otherwise run `rag check`)")
    if bm25 != embedded:
        out.append(f"BM25 holds {bm25} passages but {embedded} are embedded (an ingest may be running; "
                   f"otherwise run `rag check`)")
    return out


def reindex(settings: Settings, show_progress: bool = True) -> dict[str, object]:
    """Re-embed every passage with the configured embedding model and switch the KB to it."""
    start = time.perf_counter()
    embedder = SentenceTransformerEmbedder(settings.embedding)
    with _open(settings, write=True) as kb:
        rows = list(kb.store.embed_texts())
        index = kb.new_vector_index(embedder.dimension)
        for i in tqdm(range(0, len(rows), 1024), desc="re-embedding", disable=not show_progress):
            chunk = rows[i : i + 1024]
            index.add(np.array([v for _, v, _ in chunk], dtype=np.int64), embedder.embed([t for _, _, t in chunk]))
        kb.install_vectors(index)
        kb.update_manifest(embedding=embedding_manifest(settings, embedder.dimension), index_type=index.kind)
        return {"passages": len(rows), "embedding_model": settings.embedding.model,
                "seconds": round(time.perf_counter() - start, 3)}


def check_kb(settings: Settings) -> CheckReport:
    """`rag check`: every file of the KB, its counts and ids."""
    return check(Path(settings.kb.path), settings)


def repair_kb(settings: Settings, embedder: SentenceTransformerEmbedder | None = None) -> dict[str, object]:
    """`rag repair`: rebuild FAISS and BM25 from SQLite (copies kept in ``kb/backups/``), then embed what is
    missing with the configured embedder."""
    start = time.perf_counter()
    pipeline = IngestPipeline(settings.override({"ingest.show_progress": False}), embedder)
    result = repair_files(Path(settings.kb.path), settings, pipeline.embedder.dimension)
    with pipeline.open_kb() as kb:
        embedded = pipeline.embed_queue(kb)
        counts = kb.store.counts()
    after = check(Path(settings.kb.path), settings)
    return {**result, "embedded": embedded, "passages": counts["passages"], "ok": after.ok,
            "problems": after.problems, "seconds": round(time.perf_counter() - start, 3)}
