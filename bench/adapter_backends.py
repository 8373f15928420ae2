"""A promoted distillation adapter served by llama.cpp, per GGUF type, against the transformers answers of its gate.

A round (``rag distill``, or ``bench/distill.py``) leaves in its adapter folder the gate's held-out questions
(``gate.jsonl``: closed-book phrasings of the distilled facts never trained, with the key spans a correct answer
holds) and the greedy answers transformers gave with the adapter (``answers.json``: held-out and general prompts);
the KB's ``adapters/base-answers.json`` holds the base model's general answers. This bench asks the same prompts
through ``LlamaCppGenerator`` with and without the adapter (converted to a GGUF LoRA) for each ``--types`` entry
and grades every answer set with the gate's own ``is_correct``; ``same_as_transformers`` is the share of answers
identical to the transformers answer, word for word.

    .venv/bin/python bench/distill.py --one-round ...        # leaves /tmp/distill-bench-*/kb/adapters/<round>
    .venv/bin/python bench/adapter_backends.py --adapter /tmp/distill-bench-xyz/kb/adapters/<round> --types Q8_0,F16

``--base-only`` needs no round: the base model's greedy answers to the general prompts, transformers (generated in
the same run, as the gate does) against llama.cpp per type; ``same_as_transformers`` is then what ``gguf_type``
costs the gate's measurement on this CPU.

    .venv/bin/python bench/adapter_backends.py --base-only --types BF16,F16 --out bench/results/backend_agreement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.distill.data import general_set  # noqa: E402
from knowledge.distill.facts import is_correct  # noqa: E402
from rag.config import GenerationConfig  # noqa: E402
from rag.generation.llamacpp import LlamaCppGenerator  # noqa: E402

ANSWER_TOKENS = 32  # as the gate asks (knowledge.distill.gate.ANSWER_TOKENS)


def load_items(adapter: Path) -> tuple[list[tuple[str, str, tuple[str, ...]]], dict[str, str], dict[str, str]]:
    """(group, prompt, spans) for the held-out and general prompts, and transformers' answers with/without adapter."""
    with_adapter = json.loads((adapter / "answers.json").read_text())["answers"]
    base = json.loads((adapter.parent / "base-answers.json").read_text())["answers"]
    items = [("heldout", row["prompt"], tuple(row["spans"]))
             for row in map(json.loads, (adapter / "gate.jsonl").read_text().splitlines()) if row["group"] == "heldout"]
    general = general_set()
    for prompt in base:
        gold = [spans for question, spans in general if f"\n{question}<" in prompt]
        if len(gold) != 1:
            raise SystemExit(f"{adapter.parent / 'base-answers.json'}: no single general question in {prompt!r}")
        items.append(("general", prompt, gold[0]))
    return items, with_adapter, base


def grade(items: list[tuple[str, str, tuple[str, ...]]], answers: dict[str, str]) -> dict[str, dict[str, float]]:
    out = {}
    for group in ("heldout", "general"):
        rows = [(p, s) for g, p, s in items if g == group and p in answers]
        if rows:
            out[group] = {"accuracy": round(sum(is_correct(answers[p], s) for p, s in rows) / len(rows), 4),
                          "n": len(rows)}
    return out


def base_only(types: list[str]) -> dict:
    """The base model's general answers: transformers against llama.cpp for each type, word for word."""
    from knowledge.distill.data import Prompter
    from rag.generation.generate import HFGenerator
    from rag.models import cpu_has_fast_bf16

    hf = HFGenerator(GenerationConfig(max_new_tokens=ANSWER_TOKENS))
    prompter = Prompter(hf)
    items = [("general", prompter.closed(q), spans) for q, spans in general_set()]
    t0 = time.perf_counter()
    reference = {p: hf.generate(p) for _, p, _ in items}
    runs = [{"backend": "transformers", "prefill_bf16": hf.prefill_bf16, "seconds": round(time.perf_counter() - t0, 1)}
            | grade(items, reference)]
    for gguf_type in types:
        gen = LlamaCppGenerator(GenerationConfig(backend="llamacpp", gguf_type=gguf_type, max_new_tokens=ANSWER_TOKENS))
        t0 = time.perf_counter()
        answers = {p: gen.generate(p) for _, p, _ in items}
        same = sum(answers[p] == reference[p] for p in reference) / len(reference)
        runs.append({"backend": "llamacpp", "gguf_type": gguf_type} | grade(items, answers) | {
            "same_as_transformers": round(same, 4), "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(runs[-1]), flush=True)
    return {"cpu_bf16": cpu_has_fast_bf16(), "prompts": len(items), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, help="a promoted round's adapter folder")
    parser.add_argument("--base-only", action="store_true", help="no adapter: the base model's general answers")
    parser.add_argument("--types", default="Q8_0,F16", help="comma-separated generation.gguf_type values")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adapter_backends.json")
    args = parser.parse_args()
    if args.base_only:
        result = {"command": " ".join(["bench/adapter_backends.py", *sys.argv[1:]])} | base_only(args.types.split(","))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        return
    if args.adapter is None:
        parser.error("--adapter is required without --base-only")
    adapter = args.adapter.resolve()
    items, hf_adapter, hf_base = load_items(adapter)
    result = {"command": " ".join(["bench/adapter_backends.py", *sys.argv[1:]]), "adapter": adapter.name,
              "runs": [{"backend": "transformers", "adapter": True} | grade(items, hf_adapter),
                       {"backend": "transformers", "adapter": False} | grade(items, hf_base)]}
    for gguf_type in args.types.split(","):
        for with_adapter in (True, False):
            reference = hf_adapter if with_adapter else hf_base
            config = GenerationConfig(backend="llamacpp", gguf_type=gguf_type, max_new_tokens=ANSWER_TOKENS)
            gen = LlamaCppGenerator(config, adapter=str(adapter) if with_adapter else "")
            prompts = [p for g, p, _ in items if with_adapter or g == "general"]
            t0 = time.perf_counter()
            answers = {p: gen.generate(p) for p in prompts}
            same = sum(answers[p] == reference[p] for p in prompts) / len(prompts)
            run = {"backend": "llamacpp", "gguf_type": gguf_type, "adapter": with_adapter} | grade(items, answers) | {
                "same_as_transformers": round(same, 4), "seconds": round(time.perf_counter() - t0, 1)}
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
