"""Birthplace questions on the look-alike author bank, asked through ``QAPipeline.ask`` and scored against gold.

40 authors (seed 0, 200 SciFact distractors when ``../shared/data`` is there), each asked "Where was X born?" and
two human-style paraphrases ("Do you know what city X comes from?", "X - born where, exactly?"): right, abstained,
supported, supported and right. A biography's parents line shares the author's name with the question; only the
line that names a town answers it (``rag.grounding.sentences.wants_place``).

    .venv/bin/python bench/place_questions.py --out bench/results/place_questions.json
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
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    from bench.distill import ingest_bank
    from bench.docs import machine
    from bench.factbank import gold_correct, make_lookalike_bank
    from pipelines.qa import QAPipeline

    docs, facts = make_lookalike_bank(10, 4, 0)
    qa = QAPipeline.from_config(ingest_bank(Path(tempfile.mkdtemp(prefix="place-")) / "bank", docs, facts, 200, 0))
    rows = []
    for fact in [f for f in facts if f.attribute == "birthplace"]:
        for question in (fact.asked[0], *fact.unseen):
            a = qa.ask(question, log=False)
            rows.append({"question": question, "answer": a.text, "right": gold_correct(a.text, fact),
                         "abstained": a.abstained, "supported": bool(a.supported), "seconds": a.timings["total_s"]})
    qa.close()
    out = {"machine": machine(), "root": str(args.root), "n": len(rows), "right": sum(r["right"] for r in rows),
           "abstained": sum(r["abstained"] for r in rows), "supported": sum(r["supported"] for r in rows),
           "supported_right": sum(r["supported"] and r["right"] for r in rows),
           "median_s": statistics.median(r["seconds"] for r in rows), "rows": rows}
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
