"""Retrieval quality through the real path: ingest a BEIR-layout corpus into a KB, then nDCG@10 per mode/fusion.

Usage:
    .venv/bin/python bench/retrieval.py --kb /tmp/scifact-kb --split test

The corpus goes through ``IngestPipeline`` (chunking, embedding, FAISS, BM25) and queries through
``HybridRetriever.retrieve_batch``, so this measures what users get. A document's rank is the rank of its best
passage. Tune on ``--split train``; report ``--split test``. Re-running reuses the KB (ingest is incremental).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ir_measures
from ir_measures import R, nDCG

from knowledge.kb import KnowledgeBase
from pipelines.config import load_settings
from pipelines.ingest import IngestPipeline, embedding_manifest
from rag.embedding.embed import SentenceTransformerEmbedder
from rag.retrieve import HybridRetriever

VARIANTS = {
    "sparse": {"mode": "sparse"},
    "dense": {"mode": "dense"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-weighted": {"mode": "hybrid", "fusion": "weighted"},
}


def read_beir(data: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries (only those judged in ``split``) and their qrels."""
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    queries = {}
    for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["_id"] in qrels:
            queries[row["_id"]] = row["text"]
    return queries, qrels


def run_variant(retriever: HybridRetriever, queries: dict[str, str], k: int, batch: int) -> tuple[dict, float]:
    """Document run ``{qid: {doc: score}}`` and milliseconds per query."""
    qids, run = list(queries), {}
    start = time.perf_counter()
    for i in range(0, len(qids), batch):
        chunk = qids[i : i + batch]
        for qid, hits in zip(chunk, retriever.retrieve_batch([queries[q] for q in chunk], k=k)):
            docs: dict[str, float] = {}
            for hit in hits:  # best passage first: a document keeps the score of its best passage
                docs.setdefault(hit.passage.doc_id.rsplit("#", 1)[-1], float(len(hits) - hit.rank + 1))
            run[qid] = docs
    return run, (time.perf_counter() - start) * 1000 / max(len(qids), 1)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact")
    parser.add_argument("--kb", type=Path, default=Path("/tmp/scifact-kb"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--config", type=Path, default=None, help="a config.toml; default settings otherwise")
    parser.add_argument("--k", type=int, default=100, help="passages retrieved per query")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "retrieval.json")
    args = parser.parse_args(argv)

    settings = load_settings(args.config).override({"kb.path": str(args.kb), "ingest.show_progress": False})
    embedder = SentenceTransformerEmbedder(settings.embedding)
    report = IngestPipeline(settings, embedder).run([args.data / "corpus.jsonl"])
    print(f"ingest: {report.passages} passages in {report.seconds:.0f} s")
    queries, qrels = read_beir(args.data, args.split)
    results = {}
    with KnowledgeBase.open(args.kb, embedding_manifest(settings), index=settings.index,
                            retrieval=settings.retrieval) as kb:
        for name, overrides in VARIANTS.items():
            config = settings.override({f"retrieval.{key}": value for key, value in overrides.items()}).retrieval
            retriever = HybridRetriever(config, embedder, kb.vectors, kb.bm25, kb.store)
            run, ms = run_variant(retriever, queries, args.k, args.batch)
            scores = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
            results[name] = {"nDCG@10": scores[nDCG @ 10], "R@100": scores[R @ 100], "ms_per_query": ms}
            print(f"{name:16s} nDCG@10 {scores[nDCG @ 10]:.4f}  R@100 {scores[R @ 100]:.4f}  {ms:.1f} ms/query")
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "settings": settings.retrieval.model_dump(),
                                        "embedding": settings.embedding.model_dump(),
                                        "ingest": {"passages": report.passages, "seconds": report.seconds},
                                        "results": results}, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
