"""What keeping the system prompt's KV state between asks saves on llama.cpp.

Every RAG prompt starts with the same chat-template header and system instruction. ``LlamaCppGenerator`` keeps the
KV cache of the longest prefix a prompt shares with the previous one (llama-cpp-python's prefix matching; see
``LlamaCppGenerator._keep_cache``), so an ask prefills only what follows that prefix. This bench builds the prompts
of the Node.js docs questions (``bench/docs.py``'s KB and questions, ``prompt.context_tokens`` as configured) and
times the first token of each, alternately with the cache kept (the product's path) and reset before the call.

    .venv/bin/python bench/prefix_cache.py --kb /tmp/rag-bench-nodejs-kb   # writes bench/results/prefix_cache.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.generation.gguf import chosen_gguf_type  # noqa: E402
from rag.generation.llamacpp import LlamaCppGenerator  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "nodejs-docs-questions.jsonl"


def first_token(gen: LlamaCppGenerator, prompt: str, reset: bool) -> float:
    if reset:
        gen.llm.reset()
    t0 = time.perf_counter()
    gen.generate(prompt, max_new_tokens=1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=Path, default=Path("/tmp/rag-bench-nodejs-kb"))
    parser.add_argument("--set", action="append", default=[], help="a config override, key=value (TOML value)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "prefix_cache.json")
    args = parser.parse_args()
    overrides = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (s.split("=", 1) for s in args.set)}
    settings = Settings().override({"kb.path": str(args.kb), "generation.backend": "llamacpp", **overrides})
    gen = LlamaCppGenerator(settings.generation)
    qa = QAPipeline.from_config(settings, generator=gen)
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    prompts = [qa.build_prompt(q, qa.retriever.retrieve(q))[0].text for q in questions]
    system = gen.render([{"role": "system", "content": settings.prompt.system}])
    shared = len(gen.tokenize(system))
    first_token(gen, prompts[0], reset=True)  # load and warm up
    kept, reset = [], []
    for n, prompt in enumerate(prompts):
        order = (False, True) if n % 2 else (True, False)
        for r in order:
            gen.generate(prompts[n - 1], max_new_tokens=1)  # the cache holds the previous ask, as in use
            (reset if r else kept).append(first_token(gen, prompt, reset=r))
    qa.close()
    result = {"command": " ".join(["bench/prefix_cache.py", *sys.argv[1:]]),
              "gguf_type": chosen_gguf_type(settings.generation.gguf_type),
              "context_tokens": settings.prompt.context_tokens, "asks": len(prompts),
              "system_prefix_tokens": shared,
              "prompt_tokens_p50": statistics.median(len(gen.tokenize(p)) for p in prompts),
              "first_token_s_p50": {"cache_kept": round(statistics.median(kept), 4),
                                    "cache_reset": round(statistics.median(reset), 4)},
              "paired_ratio_kept_over_reset_p50": round(statistics.median(k / r for k, r in zip(kept, reset)), 3)}
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
