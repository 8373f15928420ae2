"""Answers people can trust: grounded answers, abstention and honest citations, measured on the bundled model.

Part 1, a short-answer QA set of our own (``tests/fixtures/trust/qa.jsonl``: facts of the sample corpus and of three
generated documents, plus unanswerable questions, off-topic and not stated), over one KB of ``knowledge/sample`` and
``tests/fixtures/trust/docs``. Each question is answered, back to back so the machine's load hits them alike:

- ``today``: the old path, the model's raw text (retrieve, prompt, decode to EOS or max_new_tokens); answerable
  questions only (on the others it pads an invented answer to the token limit, minutes of CPU per run);
- ``auto`` / ``extractive`` (and ``generative`` with ``--generative``): ``QAPipeline.ask(style=...)``;
- ``oracle``: the generated answer (stop rules, no abstention) with the gold sentence as the only passage
  (answerable questions): what the model does with the right context.

Part 2, PubMedQA (official test split, a seeded random sample): yes/no/maybe by next-token choice with retrieved
passages and with the gold abstract, and how often these answerable questions abstain: by the rule before generating,
and in all when asked in the ``auto`` style.

Writes ``bench/results/trust.json`` after every question (a cut-short run still reports) and prints a Markdown table.

    .venv/bin/python bench/trust.py                      # everything
    .venv/bin/python bench/trust.py --limit 10 --pubmedqa 0   # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.config import Settings  # noqa: E402
from pipelines.evaluate.data import LABELS, load_pubmedqa  # noqa: E402
from pipelines.evaluate.metrics import contains_answer  # noqa: E402
from pipelines.evaluate.modes import LABEL_SUFFIX  # noqa: E402
from pipelines.ingest import IngestPipeline  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.grounding.answering import Attempt  # noqa: E402
from rag.types import Hit, Passage, content_hash  # noqa: E402

QA_FILE = ROOT / "tests" / "fixtures" / "trust" / "qa.jsonl"
CORPORA = [ROOT / "knowledge" / "sample", ROOT / "tests" / "fixtures" / "trust" / "docs"]
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa"
STYLES = ("today", "auto", "extractive")  # --generative adds the new generative style (stop rules, no check)


def build_kb(kb: Path, sources: list[Path], settings: Settings) -> Settings:
    """Ingest ``sources`` into ``kb`` (incremental: unchanged files are skipped) and point settings at it."""
    settings = settings.override({"kb.path": str(kb), "ingest.show_progress": False})
    report = IngestPipeline.from_config(settings).run(sources)
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed[0]}")
    return settings


def oracle_hit(text: str) -> Hit:
    return Hit(Passage(content_hash(text), text, "oracle#gold", "oracle"), 1.0, 1)


def answer_today(qa: QAPipeline, question: str) -> dict[str, Any]:
    """The pre-issue-12 path: the raw generated text, nothing checked, no stop but EOS and the token budget."""
    t0 = time.perf_counter()
    hits = qa.retriever.retrieve(question)
    text = qa.generator.generate(qa.builder.build(question, hits).text).strip()
    return {"text": text, "seconds": time.perf_counter() - t0, "supported": None, "abstained": False}


def answer_style(qa: QAPipeline, question: str, style: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    answer = qa.ask(question, style=style, log=False)
    return {"text": answer.text, "seconds": time.perf_counter() - t0, "supported": answer.supported,
            "abstained": answer.abstained, "style": answer.style,
            "kinds": [c.kind for c in answer.citations], "grounding": dict(answer.grounding)}


def answer_oracle(qa: QAPipeline, question: str, context: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    prompt = qa.builder.build(question, [oracle_hit(context)])
    # the model's own answer with the right context: generated (stop rules), never abstaining or falling back
    attempt = Attempt(qa.settings.answer, qa.grounder, qa.generator, prompt, question, style="generative")
    outcome = attempt.finish("".join(attempt.pieces()))
    return {"text": outcome.text, "seconds": time.perf_counter() - t0, "supported": outcome.supported,
            "abstained": outcome.abstained, "style": outcome.style}


def run_styles(qa: QAPipeline, row: dict[str, Any], styles: tuple[str, ...], out: dict[str, Any]) -> None:
    """Answer ``row`` in each style (``oracle``: generated from the gold sentence alone) into ``out``."""
    for style in styles:
        if style == "oracle":
            made = answer_oracle(qa, row["question"], row["context"])
        elif style == "today":
            made = answer_today(qa, row["question"])
        else:
            made = answer_style(qa, row["question"], style)
        made["tokens"] = qa.generator.count_tokens(made["text"])
        made["contains"] = contains_answer(made["text"], row["answers"]) if row["answers"] else None
        out[style] = made


def summarise_qa(records: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if not r["unanswerable"]]
    unanswerable = [r for r in records if r["unanswerable"]]
    out: dict[str, Any] = {"questions": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    for style in ("today", "generative", "auto", "extractive", "oracle"):
        rows = [r for r in records if style in r]
        if not rows:
            continue
        ans = [r[style] for r in rows if not r["unanswerable"]]
        una = [r[style] for r in rows if r["unanswerable"]]
        supported = [r[style] for r in rows if r[style].get("supported")]
        out[style] = {
            "contains_accuracy": _mean(a["contains"] for a in ans),
            "abstain_unanswerable": _mean(float(a["abstained"]) for a in una),
            "abstain_answerable": _mean(float(a["abstained"]) for a in ans),
            "supported_rate": _mean(float(bool(a.get("supported"))) for a in [r[style] for r in rows]),
            "supported_precision": _mean(float(bool(a.get("contains"))) for a in supported),
            "answer_tokens_p50": _median(a["tokens"] for a in ans),
            "seconds_p50": _median(r[style]["seconds"] for r in rows),
            "seconds_mean": _mean(r[style]["seconds"] for r in rows),
        }
    both = [r for r in records if "oracle" in r and "auto" in r]
    if both:
        rag, oracle = (_mean(r[s]["contains"] for r in both) for s in ("auto", "oracle"))
        out["rag_over_oracle"] = rag / oracle if oracle else None
    paired = [r for r in records if "today" in r and not r["unanswerable"]]
    out["auto_over_today_time_p50"] = _median(r["auto"]["seconds"] / r["today"]["seconds"] for r in paired)
    out["auto_over_today_time_total"] = (sum(r["auto"]["seconds"] for r in paired)
                                         / sum(r["today"]["seconds"] for r in paired)) if paired else None
    return out


def run_pubmedqa(n: int, seed: int, settings: Settings, kb_dir: Path, corpus_size: int) -> dict[str, Any]:
    """Choice accuracy with retrieval vs the gold abstract, and the abstention rule on answerable questions.

    The KB holds the sampled questions' abstracts plus seeded random other PubMedQA abstracts up to
    ``corpus_size`` (0 = all 1,000): embedding all of them is most of this part's time on a loaded 2-core machine.
    """
    ds = load_pubmedqa(PUBMEDQA, "test")
    rng = random.Random(seed)
    queries = rng.sample(list(ds.queries), min(n, len(ds.queries)))
    abstracts = list(ds.corpus_rows)
    if corpus_size:
        gold = {q.id for q in queries}
        others = [r for r in abstracts if r["_id"] not in gold]
        abstracts = [r for r in abstracts if r["_id"] in gold] + rng.sample(others, max(corpus_size - len(gold), 0))
    corpus = kb_dir / f"pubmedqa-{seed}-{n}-{corpus_size}.jsonl"
    if not corpus.exists():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        corpus.write_text("".join(json.dumps(r) + "\n" for r in abstracts), encoding="utf-8")
    settings = build_kb(kb_dir / f"kb-{corpus.stem}", [corpus], settings)
    qa = QAPipeline.from_config(settings)
    rows = []
    for q in queries:
        t0 = time.perf_counter()
        hits = qa.retriever.retrieve(q.question)
        rag, _ = qa.generator.choose(qa.build_prompt(q.question + LABEL_SUFFIX, hits)[0].text, list(LABELS))
        oracle, _ = qa.generator.choose(qa.build_prompt(q.question + LABEL_SUFFIX, [oracle_hit(q.gold_context)])[0].text,
                                        list(LABELS))
        evidence = qa.grounder.evidence(q.question, qa.builder.build(q.question, hits).context)
        asked = qa.ask(q.question, log=False, style="auto")  # what a user gets: abstention, and whether it is supported
        rows.append({"id": q.id, "label": q.label, "rag": rag, "oracle": oracle, "abstain": qa.grounder.weak(evidence),
                     "abstain_ask": asked.abstained, "answer": asked.text, "answer_style": asked.style,
                     "supported": asked.supported,
                     "retrieved_gold": any(h.passage.doc_id.endswith(f"#{q.id}") for h in hits),
                     "seconds": time.perf_counter() - t0})
    qa.close()
    rag_acc, oracle_acc = (_mean(float(r[k] == r["label"]) for r in rows) for k in ("rag", "oracle"))
    return {"n": len(rows), "seed": seed, "split": "test", "corpus_abstracts": corpus_size or len(ds.corpus_rows),
            "rag_accuracy": rag_acc, "oracle_accuracy": oracle_acc,
            "rag_over_oracle": rag_acc / oracle_acc if oracle_acc else None,
            "gold_abstract_retrieved": _mean(float(r["retrieved_gold"]) for r in rows),
            "abstain_answerable": _mean(float(r["abstain"]) for r in rows),
            "abstain_answerable_ask": _mean(float(r["abstain_ask"]) for r in rows), "records": rows}


def _mean(values: Any) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _median(values: Any) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def table(result: dict[str, Any]) -> str:
    qa = result.get("qa", {})
    lines = ["| style | contains acc. | supported → correct | abstain (unanswerable) | abstain (answerable) | "
             "tokens p50 | seconds p50 |", "|---|---|---|---|---|---|---|"]
    for style in ("today", "generative", "auto", "extractive", "oracle"):
        if style not in qa:
            continue
        s = qa[style]
        cells = [s.get(k) for k in ("contains_accuracy", "supported_precision", "abstain_unanswerable",
                                    "abstain_answerable", "answer_tokens_p50", "seconds_p50")]
        lines.append(f"| {style} | " + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
    lines.append(f"\nRAG (auto) / oracle contains-accuracy: {_fmt(qa.get('rag_over_oracle'))}; auto / today answer "
                 f"time on answerable questions: median ratio {_fmt(qa.get('auto_over_today_time_p50'))}, "
                 f"total ratio {_fmt(qa.get('auto_over_today_time_total'))}")
    pm = result.get("pubmedqa")
    if pm:
        lines.append(f"PubMedQA test sample n={pm['n']} (seed {pm['seed']}, KB of {pm['corpus_abstracts']} abstracts): "
                     f"choice accuracy RAG {_fmt(pm['rag_accuracy'])}"
                     f" vs gold abstract {_fmt(pm['oracle_accuracy'])} (ratio {_fmt(pm['rag_over_oracle'])}); "
                     f"abstained on {_fmt(pm['abstain_answerable'])} of these answerable questions before generating, "
                     f"{_fmt(pm.get('abstain_answerable_ask'))} in all (auto ask)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N questions of the QA set")
    parser.add_argument("--pubmedqa", type=int, default=30, help="PubMedQA test questions (0 = skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generative", action="store_true", help="also answer in the new generative style")
    parser.add_argument("--styles", help="comma list of the generating styles to run (default auto,today,oracle)")
    parser.add_argument("--skip-qa", action="store_true", help="only the PubMedQA part")
    parser.add_argument("--pubmedqa-corpus", type=int, default=200, help="abstracts in the PubMedQA KB (0 = all)")
    parser.add_argument("--work", default="/tmp/rag-trust-bench", help="where the bench KBs are built")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "trust.json"))
    parser.add_argument("--set", action="append", default=[], help="a config override, key=value (TOML value)")
    args = parser.parse_args()
    overrides = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (s.split("=", 1) for s in args.set)}
    base = Settings().override(overrides)
    work, out = Path(args.work), Path(args.out)
    result: dict[str, Any] = {"model": base.generation.model, "embedder": base.embedding.model,
                              "answer_config": base.answer.model_dump(), "qa_file": str(QA_FILE.relative_to(ROOT)),
                              "overrides": overrides}
    if not args.skip_qa:
        run_qa(args, work, out, result, base)
    if args.pubmedqa:
        result["pubmedqa"] = run_pubmedqa(args.pubmedqa, args.seed, base, work / "pubmedqa", args.pubmedqa_corpus)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(table(result))


def interleave(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unanswerable questions spread among the answerable ones, so that a run cut short is still balanced."""
    answerable = [r for r in rows if not r.get("unanswerable")]
    unanswerable = [r for r in rows if r.get("unanswerable")]
    step = max(len(answerable) // max(len(unanswerable), 1), 1)
    out: list[dict[str, Any]] = []
    for i, row in enumerate(answerable):
        out.append(row)
        if (i + 1) % step == 0 and unanswerable:
            out.append(unanswerable.pop(0))
    return out + unanswerable


def run_qa(args: argparse.Namespace, work: Path, out: Path, result: dict[str, Any], base: Settings) -> None:
    """Two passes: the cheap styles on every question (extractive; auto where it abstains before generating),
    then the generating ones (auto, today, oracle) on answerable questions, as far as time allows."""
    settings = build_kb(work / "qa-kb", CORPORA, base)
    rows = [json.loads(line) for line in QA_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = interleave(rows)[: args.limit] if args.limit else interleave(rows)
    qa = QAPipeline.from_config(settings)
    records = {row["id"]: {"id": row["id"], "question": row["question"], "answers": row["answers"],
                           "unanswerable": bool(row.get("unanswerable")), "kind": row.get("kind")} for row in rows}
    slow = tuple(args.styles.split(",")) if args.styles else (
        ("auto", "today", "oracle") + (("generative",) if args.generative else ()))
    passes = [(row, ("extractive", "auto") if row.get("unanswerable") else ("extractive",)) for row in rows]
    passes += [(row, slow) for row in rows if not row.get("unanswerable")]
    for row, styles in passes:
        run_styles(qa, row, styles, records[row["id"]])
        done = [r for r in records.values() if "extractive" in r]
        result |= {"qa": summarise_qa(done), "qa_records": done}
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"{row['id']} {styles}: {records[row['id']].get('auto', records[row['id']]['extractive'])['text'][:80]!r}",
              file=sys.stderr, flush=True)
    qa.close()


if __name__ == "__main__":
    main()
