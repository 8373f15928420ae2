"""llama.cpp prefill with and without flash attention (``generation.flash_attn``), the same GGUF and threads.

Two models of the re-typed GGUF the product serves (``gguf_type = "auto"``), one with llama.cpp's fused attention
and one without, each prefill 664 tokens of Node.js documentation (the docs set's median prompt) in turns, so load
hits them alike; medians and the paired median ratio. Whole asks are compared by ``bench/docs.py --config
fa0=generation.flash_attn=false --config defaults=`` and ``bench/trust.py --set generation.flash_attn=false``.

    .venv/bin/python bench/flash_attn.py      # bench/results/flash_attn.json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.docs import machine  # noqa: E402
from rag.config import GenerationConfig  # noqa: E402
from rag.generation.backends import make_generator  # noqa: E402

TOKENS, ROUNDS = 664, 8
TEXT = (ROOT / "bench" / "data" / "nodejs-docs" / "net.md").read_text(encoding="utf-8")


def main() -> None:
    models = {fa: make_generator(GenerationConfig(backend="llamacpp", flash_attn=fa)).llm for fa in (False, True)}
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for i in range(ROUNDS):
        for fa in (False, True) if i % 2 == 0 else (True, False):
            llm = models[fa]
            tokens = llm.tokenize(TEXT[i * 3000 : i * 3000 + 4000].encode())[:TOKENS]
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(tokens)
            seconds[fa].append(time.perf_counter() - t0)
    result = {"command": "bench/flash_attn.py", "machine": machine(), "prompt_tokens": TOKENS, "rounds": ROUNDS,
              "prefill_s_p50": {"flash_attn_false": round(statistics.median(seconds[False]), 3),
                                "flash_attn_true": round(statistics.median(seconds[True]), 3)},
              "paired_ratio_true_to_false_p50": round(statistics.median(
                  t / f for t, f in zip(seconds[True], seconds[False])), 3)}
    out = ROOT / "bench" / "results" / "flash_attn.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
