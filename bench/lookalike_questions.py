"""Questions about the look-alike author bank, asked through ``QAPipeline.ask`` (retrieval, no adapter) and scored
against gold: right, wrong, abstained, supported, supported and right.

40 authors (seed 0, 200 SciFact distractors when ``../shared/data`` is there). ``--attributes birthplace`` (the
default) asks "Where was X born?" and two human-style paraphrases ("Do you know what city X comes from?", "X - born
where, exactly?"): a biography's parents line shares the author's name with the question; only the line that names
a town answers it (``rag.grounding.asks.wants_place``). ``--attributes all --unseen-only`` asks every fact's
never-asked paraphrases ("How did X's dad earn a living?", "The Golden Key Award went to which writer from Rekullo?"),
whose words the biographies do not use (``Grounder.named_only``).

    .venv/bin/python bench/lookalike_questions.py --out bench/results/place_questions.json
    .venv/bin/python bench/lookalike_questions.py --attributes all --unseen-only --out bench/results/paraphrases.json
    # the code before a change: run this file from a worktree of the older commit with --root there
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code answers (default: this one)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "place_questions.json")
    ap.add_argument("--attributes", default="birthplace", help="comma list of fact attributes, or 'all'")
    ap.add_argument("--unseen-only", action="store_true", help="only the never-asked paraphrases of each fact")
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    from bench.distill import ingest_bank
    from bench.docs import machine
    from bench.factbank import gold_correct, make_lookalike_bank
    from pipelines.qa import QAPipeline

    docs, facts = make_lookalike_bank(10, 4, 0)
    qa = QAPipeline.from_config(ingest_bank(Path(tempfile.mkdtemp(prefix="place-")) / "bank", docs, facts, 200, 0))
    rows = []
    wanted = None if args.attributes == "all" else set(args.attributes.split(","))
    for fact in [f for f in facts if wanted is None or f.attribute in wanted]:
        for question in fact.unseen if args.unseen_only else (fact.asked[0], *fact.unseen):
            a = qa.ask(question, log=False)
            rows.append({"attribute": fact.attribute, "question": question, "answer": a.text,
                         "right": gold_correct(a.text, fact),
                         "abstained": a.abstained, "supported": bool(a.supported), "seconds": a.timings["total_s"]})
    qa.close()
    out = {"machine": machine(), "root": str(args.root), "attributes": args.attributes,
           "unseen_only": args.unseen_only, "n": len(rows), "right": sum(r["right"] for r in rows),
           "wrong": sum(not r["right"] and not r["abstained"] for r in rows),
           "abstained": sum(r["abstained"] for r in rows), "supported": sum(r["supported"] for r in rows),
           "supported_right": sum(r["supported"] and r["right"] for r in rows),
           "by_attribute": {name: {"n": sum(r["attribute"] == name for r in rows),
                                   "right": sum(r["right"] for r in rows if r["attribute"] == name),
                                   "wrong": sum(not r["right"] and not r["abstained"] for r in rows
                                                if r["attribute"] == name)}
                            for name in dict.fromkeys(r["attribute"] for r in rows)},
           "median_s": statistics.median(r["seconds"] for r in rows), "rows": rows}
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
