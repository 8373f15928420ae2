"""Ingest benchmark: the project's `IngestPipeline` vs LlamaIndex's `IngestionPipeline`, same corpus, same model.

Reads ../shared/data/scifact/corpus.jsonl (BEIR SciFact, 5,183 abstracts; not shipped with the project).
Each system runs in its own subprocess so that its peak RSS is its own. Writes bench/results/ingest.json.

``encode`` is the limit for a given model: ``SentenceTransformer.encode`` alone (same model, same dtype, batch size
64) on the very passages our ingest embedded, read back from its KB; ``ours_share_of_encode`` is our passages/s over
its passages/s, i.e. how much of the embedder's own throughput the whole ingest (reading, spaCy, chunking, SQLite,
FAISS, BM25, checkpoints) keeps.

    python bench/ingest.py [--corpus PATH] [--limit N] [--skip-llamaindex] [--set embedding.dtype=int8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(corpus: Path, overrides: dict[str, str]) -> dict:
    sys.path.insert(0, str(ROOT))
    from pipelines.config import Settings
    from pipelines.ingest import IngestPipeline

    kb = tempfile.mkdtemp(prefix="bench-kb-")
    settings = Settings().override({"kb.path": kb, "ingest.show_progress": False, **overrides}, "--set")
    start = time.perf_counter()
    report = IngestPipeline.from_config(settings).run([corpus])
    seconds = time.perf_counter() - start
    with open(corpus, encoding="utf-8") as fh:
        docs = sum(1 for line in fh if line.strip())
    return {"docs": docs, "passages": report.passages, "embedded": report.embedded, "seconds": seconds,
            "failed": report.failed, "peak_rss_mb": _peak_rss_mb(), "kb": kb,
            "settings": {"preprocess": settings.preprocess.model_dump(), "embedding": settings.embedding.model_dump()}}


def run_encode(kb: Path, overrides: dict[str, str]) -> dict:
    """``SentenceTransformer.encode`` alone on the texts our ingest embedded into ``kb``."""
    sys.path.insert(0, str(ROOT))
    from knowledge.kb import KnowledgeBase
    from pipelines.config import Settings
    from rag.embedding.embed import SentenceTransformerEmbedder

    settings = Settings().override(overrides, "--set")
    with KnowledgeBase.open(kb) as base:
        texts = [text for _, _, text in base.store.embed_texts()]
    model = SentenceTransformerEmbedder(settings.embedding).model  # the same model, dtype and device as ours
    model.encode(texts[:64], batch_size=64)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=settings.embedding.batch_size, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    return {"docs": 0, "passages": len(texts), "embedded": len(texts), "seconds": seconds,
            "peak_rss_mb": _peak_rss_mb(), "dtype": str(next(model.parameters()).dtype)}


def run_llamaindex(corpus: Path) -> dict:
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    sys.path.insert(0, str(ROOT))
    from rag.models import BUNDLED_EMBEDDERS, package_file

    model_dir = str(package_file(*BUNDLED_EMBEDDERS["sentence-transformers/all-MiniLM-L6-v2"]))
    start = time.perf_counter()
    rows = [json.loads(line) for line in open(corpus, encoding="utf-8") if line.strip()]
    docs = [Document(text=f"{r.get('title', '')}\n{r['text']}", id_=r["_id"]) for r in rows]
    pipeline = IngestionPipeline(transformations=[
        SentenceSplitter(chunk_size=256, chunk_overlap=20),
        HuggingFaceEmbedding(model_name=model_dir, device="cpu"),
    ])
    nodes = pipeline.run(documents=docs)
    seconds = time.perf_counter() - start
    embedded = sum(1 for n in nodes if n.embedding is not None)
    return {"docs": len(docs), "passages": len(nodes), "embedded": embedded, "seconds": seconds,
            "peak_rss_mb": _peak_rss_mb()}


def _subprocess(system: str, corpus: Path, sets: list[str], kb: str = "") -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, __file__, "--worker", system, "--corpus", str(corpus), "--kb", kb,
                          *[a for s in sets for a in ("--set", s)]],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N documents")
    parser.add_argument("--skip-llamaindex", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of ours, e.g. embedding.dtype=int8 (LlamaIndex keeps its defaults)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    parser.add_argument("--skip-encode", action="store_true", help="skip the embedder-only peer")
    parser.add_argument("--worker", choices=["ours", "llamaindex", "encode"], help=argparse.SUPPRESS)
    parser.add_argument("--kb", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        overrides = dict(s.split("=", 1) for s in args.set)
        workers = {"ours": lambda: run_ours(args.corpus, overrides), "llamaindex": lambda: run_llamaindex(args.corpus),
                   "encode": lambda: run_encode(Path(args.kb), overrides)}
        print(json.dumps(workers[args.worker]()))
        return
    corpus = args.corpus.resolve()
    if args.limit:
        tmp = Path(tempfile.mkdtemp()) / "corpus.jsonl"
        tmp.write_text("".join(open(corpus, encoding="utf-8").readlines()[: args.limit]), encoding="utf-8")
        corpus = tmp
    results = {"corpus": str(args.corpus), "limit": args.limit, "cpu_count": os.cpu_count(), "set": args.set,
               "ours": _subprocess("ours", corpus, args.set)}
    if not args.skip_encode and "kb" in results["ours"]:
        results["encode"] = _subprocess("encode", corpus, args.set, results["ours"]["kb"])
    if not args.skip_llamaindex:
        results["llamaindex"] = _subprocess("llamaindex", corpus, [])
    _report(results, args.out)


def _report(results: dict, out: Path) -> None:
    print(f"{'system':<12} {'docs':>6} {'passages':>9} {'embedded':>9} {'seconds':>8} {'docs/s':>7} "
          f"{'passages/s':>10} {'peak RSS MB':>11}")
    for system in ("ours", "encode", "llamaindex"):
        r = results.get(system)
        if not r:
            continue
        if "error" in r:
            print(f"{system:<12} error: {r['error']}")
            continue
        r["docs_per_s"] = r["docs"] / r["seconds"] if r["docs"] else 0.0
        r["passages_per_s"] = r["passages"] / r["seconds"]
        print(f"{system:<12} {r['docs']:>6} {r['passages']:>9} {r['embedded']:>9} {r['seconds']:>8.1f} "
              f"{r['docs_per_s']:>7.1f} {r['passages_per_s']:>10.1f} {r['peak_rss_mb']:>11.0f}")
    ours, peer, encode = results.get("ours", {}), results.get("llamaindex", {}), results.get("encode", {})
    if "passages_per_s" in ours and "passages_per_s" in encode:
        results["ours_share_of_encode"] = ours["passages_per_s"] / encode["passages_per_s"]
        print(f"ours / SentenceTransformer.encode passages/s: {results['ours_share_of_encode']:.2f}")
    if "docs_per_s" in ours and "docs_per_s" in peer:
        results["speedup_docs_per_s"] = ours["docs_per_s"] / peer["docs_per_s"]
        print(f"ours / LlamaIndex docs/s: {results['speedup_docs_per_s']:.2f}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
