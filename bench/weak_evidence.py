"""How often the answer rule abstains before generating (``Grounder.weak``), on questions people word their own way.

Two sets, one KB each, no generation (retrieval and the grounder's scores only, so it runs in about a minute):

- the trust set (``tests/fixtures/trust/qa.jsonl`` over ``knowledge/sample`` + ``tests/fixtures/trust/docs``): 32
  answerable questions worded close to their documents and 22 unanswerable ones; what the thresholds were tuned on;
- the look-alike bank of ``bench/distill.py`` (seed 0, 40 authors in families sharing a city, genre and award
  pattern, 200 SciFact distractors when ``../shared/data`` is there): every fact's first asked phrasing and its two
  human-style paraphrases ("Do you know what city X comes from?", "How did X's mum earn a living?"). Each has
  one answer, in its author's biography.

For each question: best dense cosine (``retrieval``), the best passage's share of the question's topic words
(``coverage``), the best passage sentence's score (``sentence``), whether it abstains before generating (``weak``),
and whether the gold author's biography was retrieved. Writes ``bench/results/weak_evidence.json``.
``--before FILE`` (an earlier run's JSON): the bank questions that abstained there and no longer do are asked
through ``QAPipeline.ask`` and scored against gold (``rescued``): what a change to the rule gives users.

    .venv/bin/python bench/weak_evidence.py [--before OLD.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.distill import ingest_bank  # noqa: E402
from bench.factbank import Fact, gold_correct, make_lookalike_bank  # noqa: E402
from bench.trust import build_kb  # noqa: E402
from pipelines.config import Settings  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402


def scores(qa: QAPipeline, question: str) -> dict[str, Any]:
    """The grounder's view of ``question`` over its retrieved passages, as ``QAPipeline.ask`` computes it."""
    hits = qa.retriever.retrieve(question)
    evidence = qa.grounder.evidence(question, hits)
    best = qa.grounder.extract(evidence)
    return {"retrieval": round(qa.grounder.retrieval_score(evidence), 3),
            "coverage": round(qa.grounder.coverage(evidence), 3),
            "sentence": round(best[0].score, 3) if best else 0.0, "weak": qa.grounder.weak(evidence),
            "titles": [h.passage.title for h in hits]}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["set"]].append(r)
    for name, group in groups.items():
        out[name] = {"n": len(group), "weak": sum(r["weak"] for r in group)}
        if "gold_retrieved" in group[0]:
            held = [r for r in group if r["gold_retrieved"]]
            out[name] |= {"gold_retrieved": len(held), "weak_with_gold_retrieved": sum(r["weak"] for r in held)}
    return out


def rescued(qa: QAPipeline, rows: list[dict[str, Any]], before: list[dict[str, Any]], bank: list[Fact]) -> dict[str, Any]:
    """Bank questions weak in ``before`` and not now, asked through ``QAPipeline.ask``: right against gold?"""
    was = {r["question"] for r in before if r["set"].startswith("bank") and r["weak"]}
    asked = {q: f for f in bank for q in (f.asked[0], *f.unseen)}
    answers = [(qa.ask(r["question"], log=False), asked[r["question"]]) for r in rows
               if r["question"] in was and not r["weak"]]
    return {"n": len(answers), "right": sum(gold_correct(a.text, f) for a, f in answers),
            "abstained": sum(a.abstained for a, _ in answers),
            "median_total_s": statistics.median(a.timings["total_s"] for a, _ in answers) if answers else None,
            "wrong": [{"question": a.question, "answer": a.text} for a, f in answers if not gold_correct(a.text, f)]}


def main() -> None:
    from bench.docs import machine

    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="an earlier run's weak_evidence.json: ask what no longer abstains")
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="weak-evidence-"))
    settings = build_kb(tmp / "trust-kb", [ROOT / "knowledge" / "sample", ROOT / "tests" / "fixtures" / "trust" / "docs"],
                        Settings())
    qa = QAPipeline.from_config(settings)
    for line in (ROOT / "tests" / "fixtures" / "trust" / "qa.jsonl").read_text().splitlines():
        item = json.loads(line)
        rows.append({"set": "trust_unanswerable" if item.get("unanswerable") else "trust_answerable",
                     "kind": item["kind"], "question": item["question"], **scores(qa, item["question"])})
    qa.close()
    docs, facts = make_lookalike_bank(10, 4, 0)
    qa = QAPipeline.from_config(ingest_bank(tmp / "bank", docs, facts, 200, 0))
    for fact in facts:
        for question in (fact.asked[0], *fact.unseen):
            row = scores(qa, question)
            rows.append({"set": "bank_asked" if question == fact.asked[0] else "bank_paraphrase",
                         "kind": fact.attribute, "question": question, **row,
                         "gold_retrieved": fact.doc in row.pop("titles")})
    for r in rows:
        r.pop("titles", None)
    result = {"machine": machine(), "summary": summary(rows), "rows": rows}
    if args.before:
        result["rescued"] = rescued(qa, rows, json.loads(Path(args.before).read_text())["rows"], facts)
    qa.close()
    out = ROOT / "bench" / "results" / "weak_evidence.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
