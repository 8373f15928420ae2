"""HTTP serving throughput: requests/s and p50/p95 latency of POST /v1/ask for 1, 4 and 16 concurrent clients.

Usage:
    nice -n 10 .venv/bin/python bench/serve.py                       # sample KB, short answers, ~5 min on 2 cores
    nice -n 10 .venv/bin/python bench/serve.py --levels 1 4 --max-new-tokens 32

Starts a real `rag serve` process on 127.0.0.1 over a KB built from knowledge/sample (in a temp folder), with
the configured generation backend and ``generation.max_new_tokens`` set short. Generation is serialised by the
server (one model in memory), so more clients raise latency rather than throughput; the table shows by how much.
Each level sends ``max(--min-requests, clients)`` requests. Writes bench/results/serve.json with the backend used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RAG = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
QUESTIONS = [
    "What temperature does the Velmora kiln reach?", "Who built the Gull Point lighthouse?",
    "How long does the ferry crossing take?", "When was the island school founded?",
    "What does the fishing cooperative sell?", "What did the weather station record?",
    "How tall is the Gull Point lighthouse?", "What powers the tide mill?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kb: Path, config: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [*RAG, "--config", str(config), "--kb", str(kb), "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"rag serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    raise TimeoutError("rag serve did not start")


def level(url: str, clients: int, requests: int) -> dict:
    def one(i: int) -> float:
        t = time.perf_counter()
        r = httpx.post(f"{url}/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]}, timeout=600)
        r.raise_for_status()
        return time.perf_counter() - t

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = np.array(list(pool.map(one, range(requests))))
    wall = time.perf_counter() - start
    row = {"clients": clients, "requests": requests, "wall_s": round(wall, 2),
           "requests_per_s": round(requests / wall, 3), "p50_s": round(float(np.median(latencies)), 3),
           "p95_s": round(float(np.percentile(latencies, 95)), 3)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--min-requests", type=int, default=4, help="requests per level: max(this, clients)")
    parser.add_argument("--kb", type=Path, help="an existing KB of knowledge/sample to copy instead of ingesting")
    parser.add_argument("--backend", choices=("auto", "transformers", "llamacpp"), default="auto",
                        help="generation.backend of the server (auto: llama.cpp when built)")
    parser.add_argument("--context-tokens", type=int, default=384, help="prompt.context_tokens of the server")
    parser.add_argument("--quote-first", choices=("auto", "all", "values", "off"), default="auto",
                        help="answer.quote_first of the server ('off': every answer is generated and checked first)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        tmp = Path(tmp)
        config = tmp / "config.toml"
        config.write_text(f"[generation]\nmax_new_tokens = {args.max_new_tokens}\nbackend = \"{args.backend}\"\n"
                          f"[prompt]\ncontext_tokens = {args.context_tokens}\n"
                          f"[answer]\nquote_first = \"{args.quote_first}\"\n", encoding="utf-8")
        sample = str(ROOT / "knowledge" / "sample")
        if args.kb:
            shutil.copytree(args.kb, tmp / "kb")
        else:
            subprocess.run([*RAG, "--config", str(config), "--kb", str(tmp / "kb"), "ingest", sample, "--json"],
                           cwd=ROOT, env=ENV, check=True, capture_output=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(tmp / "kb", config, port, tmp / "server.log")
        try:
            backend = httpx.get(f"{url}/healthz").json()["model"]
            level(url, 1, 2)  # warm-up: first-use costs are not part of any level
            rows = []
            for c in args.levels:  # written after each level, so a cut-short run still leaves its numbers
                rows.append(level(url, c, max(args.min_requests, c)))
                write(args, backend, rows)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"wrote {args.out}")


def write(args: argparse.Namespace, backend: dict, rows: list[dict]) -> None:
    from bench.docs import machine  # the CPU, its bf16 flag and what llama.cpp reports: every timing names its machine

    out = {"backend": backend, "backend_setting": args.backend, "context_tokens": args.context_tokens,
           "quote_first": args.quote_first, "max_new_tokens": args.max_new_tokens,
           "load_average": os.getloadavg(), "levels": rows,
           "machine": {**machine(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
