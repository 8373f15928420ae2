"""Answers from real documentation: does the pipeline find the sentence that answers, and say it?

Corpus: 18 pages of the Node.js 20 API documentation (``bench/data/nodejs-docs``, Markdown as Node.js ships it, MIT
licence in ``COPYRIGHT``); 50 questions with short gold answers written against them, each with the doc sentence that
states it (``bench/data/nodejs-docs-questions.jsonl``). Nothing here was written for this project's sample corpus.

Part 1, no LLM: over the top-5 retrieved passages, is the gold answer in the sentence the scorer ranks first (recall@1)
or in its top 3? ``scorer`` (``rag.grounding.sentences``, used by the extractive answer, the support check and the prompt) is
compared with ``legacy`` (the score before it: similarity + question-word share + a number when asked for).

Part 2: ``QAPipeline.ask`` once per ``--config`` (named config overrides on top of the defaults and ``--set``), back
to back per question, alternating which goes first, so load hits them alike: contains-accuracy (all questions; where
the top 5 hold the answer), supported answers that are right, abstentions, prompt tokens and seconds per ask
(medians, and the paired median ratio of each config's seconds to the first config's).

    .venv/bin/python bench/docs.py      # before (transformers, whole passages) vs the defaults; bench/results/docs.json
    .venv/bin/python bench/docs.py --config whole='prompt.context_tokens=0' --config brief=''
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings  # noqa: E402
from pipelines.evaluate.metrics import contains_answer  # noqa: E402
from pipelines.ingest import IngestPipeline  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.grounding.ground import Evidence, Grounder  # noqa: E402
from rag.grounding.asks import wants_number  # noqa: E402
from rag.grounding.sentences import MIN_WORDS  # noqa: E402
from rag.text import content_words, numbers  # noqa: E402

DOCS = ROOT / "bench" / "data" / "nodejs-docs"
QUESTIONS = ROOT / "bench" / "data" / "nodejs-docs-questions.jsonl"
WHY = ("quote_first", "sibling", "pinned", "named_only", "generated", "meta", "off_best", "out_of_place", "support")


def legacy_scores(evidence: Evidence) -> list[float]:
    """The extractive score before ``rag.grounding.sentences``: similarity, question-word share (with title and section),
    a number when one is asked for, nothing for a sentence that restates the question."""
    out = []
    asked = content_words(evidence.question)
    for i, (p, _, _) in enumerate(evidence.spans):
        text, hit = evidence.sentence(i), evidence.context[p]
        words = set(content_words(text))
        if len(words) < MIN_WORDS:
            out.append(0.0)
            continue
        around = words | set(content_words(f"{hit.passage.title} {hit.passage.metadata.get('section') or ''}"))
        overlap = sum(w in around for w in asked) / len(asked) if asked else 0.0
        similarity = max(float(evidence.vectors[i] @ evidence.question_vector), 0.0)
        number = wants_number(evidence.question)
        out.append(0.5 * similarity + 0.5 * overlap + (0.1 if number and numbers(text) else -0.1 if number else 0.0)
                   + (0.0 if words - set(asked) else -0.2))
    return out


def sentence_recall(qa: QAPipeline, questions: list[dict]) -> dict[str, Any]:
    """Recall@1/@3 of the answering sentence among the top-5 hits' sentences, both scorers, same evidence."""
    grounder: Grounder = qa.grounder
    rows = []
    for q in questions:
        hits = qa.retriever.retrieve(q["question"], 5)
        evidence = grounder.evidence(q["question"], hits)
        held = any(contains_answer(h.passage.text.replace("`", ""), q["answers"]) for h in hits)
        row: dict[str, Any] = {"id": q["id"], "top5_holds": held}
        for name, scores in (("scorer", grounder.scores(evidence)), ("legacy", legacy_scores(evidence))):
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[:3]
            right = [bool(contains_answer(evidence.sentence(i).replace("`", ""), q["answers"])) for i in order]
            row[name] = {"at1": right[:1] == [True], "at3": any(right), "top": evidence.sentence(order[0])[:200]
                         if order else ""}
        rows.append(row)
    held = [r for r in rows if r["top5_holds"]]
    summary = {"questions": len(rows), "top5_holds": len(held)}
    for name in ("scorer", "legacy"):
        summary[name] = {k: round(sum(r[name][k] for r in held) / max(len(held), 1), 3) for k in ("at1", "at3")}
    return {"summary": summary, "rows": rows}


def ask(qa: QAPipeline, q: dict) -> dict[str, Any]:
    t0 = time.perf_counter()
    answer = qa.ask(q["question"], log=False)
    return {"text": answer.text, "right": bool(contains_answer(answer.text.replace("`", ""), q["answers"])),
            "supported": answer.supported, "abstained": answer.abstained, "style": answer.style,
            "prompt_tokens": answer.tokens.get("prompt", 0), "seconds": round(time.perf_counter() - t0, 3),
            "first_token_s": round(answer.timings.get("first_token_s", 0.0), 3),
            # why the answer is what it is: quote_first, pinned, the refused generated text and its check
            "grounding": {k: v for k, v in answer.grounding.items() if k in WHY}}


def answers(pipes: dict[str, QAPipeline], questions: list[dict], holds: dict[str, bool]) -> dict[str, Any]:
    rows = []
    for n, q in enumerate(questions):
        order = list(pipes) if n % 2 == 0 else list(reversed(pipes))
        rows.append({"id": q["id"], "question": q["question"]} | {c: ask(pipes[c], q) for c in order})
    summary = {}
    first = next(iter(pipes))
    for c in pipes:
        got = [r[c] for r in rows]
        held = [g for g, q in zip(got, questions) if holds[q["id"]]]
        supported = [g for g in got if g["supported"]]
        summary[str(c)] = {
            "contains_accuracy": round(sum(g["right"] for g in got) / len(got), 3),
            "contains_accuracy_top5_holds": round(sum(g["right"] for g in held) / max(len(held), 1), 3),
            "supported": len(supported), "supported_right": round(sum(g["right"] for g in supported)
                                                                  / max(len(supported), 1), 3),
            "abstained": sum(g["abstained"] for g in got),
            "prompt_tokens_p50": statistics.median(g["prompt_tokens"] for g in got),
            "seconds_p50": round(statistics.median(g["seconds"] for g in got), 3),
            "first_token_s_p50": round(statistics.median(g["first_token_s"] for g in got), 3),
            f"paired_seconds_ratio_to_{first}_p50": round(statistics.median(
                r[c]["seconds"] / r[first]["seconds"] for r in rows), 3)}
    return {"summary": summary, "rows": rows}


def parse_sets(text: str) -> dict[str, Any]:
    """``key=value;key=value`` (TOML values) -> overrides."""
    import tomllib

    pairs = [s.split("=", 1) for s in text.split(";") if s.strip()]
    return {k.strip(): tomllib.loads(f"v = {v}")["v"] for k, v in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=Path, default=Path("/tmp/rag-bench-nodejs-kb"))
    parser.add_argument("--config", action="append", default=[],
                        help="NAME=key=value;key=value (TOML values): a pipeline to compare (default: before, defaults)")
    parser.add_argument("--set", action="append", default=[], help="an override for every config, key=value (TOML)")
    parser.add_argument("--no-answers", action="store_true", help="part 1 only")
    parser.add_argument("--questions", type=Path, default=QUESTIONS,
                        help="a JSONL question set (default: the 50 tuned on; bench/data/nodejs-docs-questions-heldout.jsonl "
                             "holds 30 written after the scorer's last change, to check it)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "docs.json")
    args = parser.parse_args()
    overrides = parse_sets(";".join(args.set))
    configs = [c.split("=", 1) for c in args.config] or [
        ["before", 'generation.backend="transformers";prompt.context_tokens=0'], ["defaults", ""]]
    settings = Settings().override({"kb.path": str(args.kb), "ingest.show_progress": False, **overrides})
    t0 = time.perf_counter()
    report = IngestPipeline.from_config(settings).run([DOCS])
    ingest_s = time.perf_counter() - t0
    questions = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    pipes = {name: QAPipeline.from_config(settings.override(parse_sets(sets))) for name, sets in configs}
    first = next(iter(pipes.values()))
    result: dict[str, Any] = {"command": " ".join(["bench/docs.py", *sys.argv[1:]]), "machine": machine(),
                              "questions": str(args.questions.resolve().relative_to(ROOT)),
                              "configs": {name: parse_sets(sets) for name, sets in configs},
                              "ingest": {"seconds": round(ingest_s, 1), "passages": first.kb.store.counts()["passages"],
                                         "failed": len(report.failed)},
                              "sentences": sentence_recall(first, questions)}
    print(json.dumps(result["sentences"]["summary"], indent=1))
    if not args.no_answers:
        holds = {r["id"]: r["top5_holds"] for r in result["sentences"]["rows"]}
        for pipe in pipes.values():
            pipe.ask(questions[0]["question"], log=False)  # warm-up: model load
        result["answers"] = answers(pipes, questions, holds)
        print(json.dumps(result["answers"]["summary"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def machine() -> dict[str, str]:
    """The CPU, its bf16 and AMX flags, and what llama.cpp reports of it: every timing names its machine."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    out = {"cpu": cpu, "avx512_bf16": str("avx512_bf16" in flags), "amx_int8": str("amx_int8" in flags),
           "python": platform.python_version()}
    try:
        import llama_cpp

        out["llama_cpp"] = llama_cpp.llama_print_system_info().decode().strip()
    except ImportError:
        pass
    return out


if __name__ == "__main__":
    main()
