"""Scaling curves: ingest docs/s and peak RSS vs corpus size; index query latency, recall@10 and reader RSS vs
number of vectors, for exact (flat), HNSW and IVF-PQ with memory-mapped lists (the bigger-than-RAM kind).

Usage:
    nice -n 10 .venv/bin/python bench/scale.py                 # ~10-15 min on 2 cores: 10k, 100k, 1M vectors
    nice -n 10 .venv/bin/python bench/scale.py --vectors 10000 100000 --docs 50 200

Index curves use synthetic 384-d vectors with a low intrinsic dimension plus noise (like sentence embeddings;
pure noise would make every approximate index look useless). Each index is built through
``knowledge.vectors.FaissVectorIndex``, saved, and then *searched by a fresh reader process*, so the RSS reported
is what a serving process needs: flat and HNSW read every vector into RAM, IVF-PQ maps its lists from the file.
Recall@10 is against exact inner-product search. Ingest curves run ``rag ingest`` on synthetic text documents in a
child process (peak RSS from ``wait4``). Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DIM, QUERIES, K = 384, 200, 10

READER = r"""
import json, resource, sys, time
import faiss, numpy as np, psutil
faiss.omp_set_num_threads(1)
from pathlib import Path
from knowledge.config import IndexConfig
from knowledge.vectors import FaissVectorIndex
path, config, queries = sys.argv[1], IndexConfig.model_validate_json(sys.argv[2]), np.load(sys.argv[3])
before = psutil.Process().memory_info().rss
t0 = time.perf_counter()
index = FaissVectorIndex(Path(path), queries.shape[1], config)
load_s = time.perf_counter() - t0
lat, ids = [], []
for q in queries:
    t = time.perf_counter()
    found = index.search(q[None, :], 10)[1][0]
    lat.append(time.perf_counter() - t)
    ids.append(found.tolist())
print(json.dumps({"kind": index.kind, "load_s": load_s, "latencies": lat, "ids": ids,
                  "index_rss_mb": (psutil.Process().memory_info().rss - before) / 2**20,
                  # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forked benchmark process
                  "rss_mb": next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024}))
"""


def synthetic(n: int, seed: int, basis: np.ndarray) -> np.ndarray:
    """Unit vectors near a 48-d subspace: clustered like embeddings, generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        z = rng.normal(size=(m, basis.shape[0])).astype(np.float32) ** 3  # heavy tails: uneven clusters
        x = z @ basis + 0.15 * rng.normal(size=(m, DIM)).astype(np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def index_point(n: int, kind: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, tmp: Path) -> dict:
    from knowledge.config import IndexConfig
    from knowledge.vectors import FaissVectorIndex, estimate_memory

    config = IndexConfig(type=kind, ivf_nlist=int(np.sqrt(n)) if kind == "ivfpq" else 0, ivf_nprobe=32,
                         train_sample=min(n, max(50_000, 39 * int(np.sqrt(n)))), pq_m=48)
    path = tmp / f"{kind}-{n}.faiss"
    t0 = time.perf_counter()
    index = FaissVectorIndex(path, DIM, config)
    index.add(np.arange(n, dtype=np.int64), data[:n])
    index.save()
    build_s = time.perf_counter() - t0
    del index
    qfile = tmp / "queries.npy"
    np.save(qfile, queries)
    out = subprocess.run([sys.executable, "-c", READER, str(path), config.model_dump_json(), str(qfile)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    sidecar = path.with_suffix(".f16")
    recall = np.mean([len(set(g) & set(t.tolist())) / K for g, t in zip(got["ids"], truth, strict=True)])
    lat = np.array(got["latencies"]) * 1000
    row = {"vectors": n, "kind": got["kind"], "build_s": round(build_s, 2),
           "file_mb": round(path.stat().st_size / 2**20, 1), "refine": config.refine if kind == "ivfpq" else 0,
           "sidecar_mb": round(sidecar.stat().st_size / 2**20, 1) if sidecar.exists() else 0,
           "reader_peak_rss_mb": round(got["rss_mb"], 1),
           "index_rss_mb": round(got["index_rss_mb"], 1), "load_s": round(got["load_s"], 3),
           "query_p50_ms": round(float(np.median(lat)), 3), "query_p95_ms": round(float(np.percentile(lat, 95)), 3),
           "recall@10": round(float(recall), 4),
           "estimate_ram_mb": round(estimate_memory(kind, n, DIM, config)["ram_bytes"] / 2**20, 1)}
    path.unlink()
    path.with_suffix(".f16").unlink(missing_ok=True)
    print(json.dumps(row), flush=True)
    return row


def index_curves(sizes: list[int], hnsw_max: int) -> list[dict]:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(48, DIM)).astype(np.float32)
    data = synthetic(max(sizes), 1, basis)
    queries = synthetic(QUERIES, 2, basis)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for n in sizes:
            exact = faiss.IndexFlatIP(DIM)
            exact.add(data[:n])
            truth = exact.search(queries, K)[1]
            del exact
            for kind in ("flat", "hnsw", "ivfpq"):
                if kind == "hnsw" and n > hnsw_max:
                    continue  # HNSW construction (efConstruction 200) past 10k takes minutes on 2 shared cores
                rows.append(index_point(n, kind, data, queries, truth, Path(tmp)))
    return rows


def ingest_point(n_docs: int, tmp: Path) -> dict:
    docs = tmp / f"docs-{n_docs}"
    docs.mkdir()
    rng = np.random.default_rng(n_docs)
    words = "tide harbour ferry kiln lighthouse keeper cooperative weather station gull island school".split()
    for i in range(n_docs):
        text = " ".join(f"Record {i}.{j} notes that the {rng.choice(words)} near pier {j} measured "
                        f"{rng.integers(1000)} units." for j in range(12))
        (docs / f"doc_{i:05d}.txt").write_text(text, encoding="utf-8")
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))",
           "--kb", str(tmp / f"kb-{n_docs}"), "ingest", str(docs), "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    report = json.loads(stdout)
    row = {"docs": n_docs, "passages": report["passages"], "wall_s": round(wall, 2), "ingest_s": report["seconds"],
           "docs_per_s": round(n_docs / report["seconds"], 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hnsw-max", type=int, default=10_000)
    parser.add_argument("--docs", type=int, nargs="*", default=[25, 100, 400], help="none: skip the ingest curve")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    # one OpenMP thread: on a shared, oversubscribed CPU FAISS's spinning threads made k-means 6x slower, not faster
    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scale-ingest-") as tmp:
        ingest = [ingest_point(n, Path(tmp)) for n in args.docs]
    index = index_curves(sorted(args.vectors), args.hnsw_max)
    out = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "faiss": faiss.__version__},
           "settings": {"dim": DIM, "queries": QUERIES, "k": K, "ivf_nprobe": 32, "pq_m": 48, "hnsw_m": 32,
                        "hnsw_ef_search": 128, "nlist": "sqrt(n)",
                        "omp_threads": 1},
           "ingest": ingest, "index": index, "seconds": round(time.perf_counter() - start, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {args.out} in {out['seconds']} s")


if __name__ == "__main__":
    main()
