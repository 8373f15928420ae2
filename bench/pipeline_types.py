"""Whole asks through ``QAPipeline`` with llama.cpp, one GGUF type against another, paired and interleaved.

``bench/answer.py`` times fixed 700-token prompts with 64-token answers; real asks differ (the prompt holds the
top-k passages, ``auto`` answers stop after two sentences). This bench asks the same SciFact claims of a KB built
from SciFact (``bench/retrieval.py --kb DIR`` builds one) through two pipelines that differ only in
``generation.gguf_type``, alternating which goes first, and reports medians over the asks both answered by
generation (abstentions are excluded: they do not generate), with the paired median ratio.

    .venv/bin/python bench/pipeline_types.py --kb /tmp/scifact-kb --types F16,Q8_0 --n 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.generation.llamacpp import LlamaCppGenerator  # noqa: E402

QUERIES = ROOT.parent / "shared" / "data" / "scifact" / "queries.jsonl"


def ask(qa: QAPipeline, gen: LlamaCppGenerator, question: str) -> dict:
    start = time.perf_counter()
    answer = qa.ask(question, log=False)
    return {"total_s": time.perf_counter() - start, "prompt_tokens": answer.tokens.get("prompt", 0),
            "completion_tokens": answer.tokens.get("completion", 0), "abstained": answer.abstained,
            "first_token_s": gen.last_stats.get("first_token_s", 0.0), "generate_s": gen.last_stats.get("total_s", 0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", required=True, help="a KB built from SciFact (or the --questions' corpus)")
    parser.add_argument("--questions", type=Path, default=QUERIES,
                        help="JSONL, one ask per line in 'text' or 'question' (default: SciFact claims)")
    parser.add_argument("--types", default="F16,Q8_0", help="two generation.gguf_type values")
    parser.add_argument("--n", type=int, default=40, help="claims asked (after one warm-up ask each)")
    parser.add_argument("--skip", type=int, default=20, help="claims skipped first (the start of queries.jsonl)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline_types.json")
    args = parser.parse_args()
    first, second = args.types.split(",")
    lines = args.questions.read_text(encoding="utf-8").splitlines()[args.skip: args.skip + args.n + 1]
    claims = [(lambda r: r.get("text") or r["question"])(json.loads(line)) for line in lines]
    pipes = {}
    for gguf_type in (first, second):
        settings = Settings().override({"generation.backend": "llamacpp", "generation.gguf_type": gguf_type})
        gen = LlamaCppGenerator(settings.generation)
        pipes[gguf_type] = (QAPipeline.from_config(settings, kb=args.kb, generator=gen), gen)
        ask(*pipes[gguf_type], claims[0])  # warm-up: load, re-type once, first prefill
    rows = []
    for i, claim in enumerate(claims[1:]):
        order = (first, second) if i % 2 else (second, first)
        rows.append({"claim": claim} | {t: ask(*pipes[t], claim) for t in order})
    for qa, _ in pipes.values():
        qa.close()
    both = [r for r in rows if r[first]["completion_tokens"] and r[second]["completion_tokens"]]
    summary: dict = {"asks": len(rows), "generated_by_both": len(both)}
    for key in ("total_s", "first_token_s", "generate_s", "prompt_tokens", "completion_tokens"):
        a, b = [r[first][key] for r in both], [r[second][key] for r in both]
        summary[key] = {first: statistics.median(a), second: statistics.median(b)}
        if key.endswith("_s"):
            summary[key][f"paired {second}/{first}"] = statistics.median(y / x for x, y in zip(a, b, strict=True))
    summary["all_asks_total_s"] = {t: statistics.median(r[t]["total_s"] for r in rows) for t in (first, second)}
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(["bench/pipeline_types.py", *sys.argv[1:]]),
                                    "summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
