"""What each choice of the distillation recipe changes: one traffic log, one round per variant on a copy of the KB.

The invented-fact bank of ``bench/distill.py`` (seeded) is ingested with distractors; users ask every hot fact in
3 phrasings through ``QAPipeline.ask``. Then, for each variant below, the KB is copied and one ``DistillRound``
runs with the recipe changed in one place. Reported per variant: the round's own gate (held-out phrasings
closed-book, the same facts open-book with their passage, the general-ability set; before -> after, and its
decision), closed-book accuracy on the asked phrasings and on 2 unseen paraphrases per fact with the variant's
adapter (kept even when the gate refused it), training steps and the round's wall time.

    python bench/distill_ablation.py --entities 10 --hot-docs 3 --hot-per-doc 3 --cold-docs 7 --threads 2
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.distill import answer, ingest_bank, items, score, split_docs, traffic  # noqa: E402
from bench.factbank import make_bank  # noqa: E402
from pipelines.distill import DistillRound  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from pipelines.config import Settings  # noqa: E402
from rag.generation.generate import HFGenerator  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "recipe (defaults)": {},
    "1 phrasing (no wrappers)": {"distill.phrasings": 1},
    "no stating sentence": {"distill.statements": False},
    "no replay / general anchors": {"distill.replay": False},
    "no RAG anchors": {"distill.rag_anchors": False},
    "rank 4": {"distill.lora_r": 4, "distill.lora_alpha": 8},
    "3 epochs": {"distill.epochs": 3},
    "lr 1e-4": {"distill.learning_rate": 1e-4},
}


def run_variant(name: str, changes: dict[str, Any], settings: Settings, kb: Path, base: HFGenerator,
                sets: dict[str, list]) -> dict[str, Any]:
    copy = kb.parent / f"kb-{len(list(kb.parent.glob('kb-*')))}"
    shutil.copytree(kb, copy)
    varied = settings.override({"kb.path": str(copy), **changes}, f"variant {name!r}")
    t0 = time.perf_counter()
    report = DistillRound(varied, generator=base, progress=False).run()
    wall = round(time.perf_counter() - t0, 1)
    row: dict[str, Any] = {"changes": changes, "promoted": report.promoted, "reason": report.reason, "wall_s": wall,
                           "gate": report.metrics.get("gate", {}), "examples": report.metrics.get("examples", {}),
                           "train": report.metrics.get("train", {})}
    if report.adapter:
        adapted = HFGenerator(varied.generation, adapter=str(copy / "adapters" / report.adapter))
        qa = QAPipeline.from_config(varied, generator=adapted)
        for group, rows in sets.items():
            prompts = [qa.builder.build_closed_book(q).text for q, _, _ in rows]
            row[f"closed_{group}"] = score(answer(adapted, prompts), rows)
        qa.close()
    shutil.rmtree(copy, ignore_errors=True)
    print(f"[{wall:7.1f} s] {name}: promoted={report.promoted} ({report.reason})", flush=True)
    return row


def table(result: dict[str, Any]) -> str:
    def pair(gate: dict, group: str) -> str:
        g = gate.get(group)
        return f"{g['before']:.2f} -> {g['after']:.2f}" if g else "-"

    lines = ["| variant | held-out (gate) | open-book (gate) | other passages open-book (gate) | general (gate) | "
             "asked closed | unseen closed | examples | steps | round s | promoted |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["variants"].items():
        asked, unseen = (r.get(f"closed_{g}", {}).get("contains") for g in ("asked", "unseen"))
        lines.append(f"| {name} | {pair(r['gate'], 'heldout')} | {pair(r['gate'], 'open')} | "
                     f"{pair(r['gate'], 'rag')} | {pair(r['gate'], 'general')} | {asked if asked is None else f'{asked:.2f}'} | "
                     f"{unseen if unseen is None else f'{unseen:.2f}'} | {sum(r['examples'].values())} | "
                     f"{r['train'].get('steps', '-')} | {r['wall_s']} | {r['promoted']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=10)
    ap.add_argument("--hot-docs", type=int, default=3)
    ap.add_argument("--hot-per-doc", type=int, default=3)
    ap.add_argument("--cold-docs", type=int, default=6, help="documents asked about once (one fact each)")
    ap.add_argument("--distractors", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", default=[], help="run only the named variant(s)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="bench/results/distill_ablation.json")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    docs, facts = make_bank(args.entities, args.seed)
    split = split_docs([d["name"] for d in docs], facts, args.hot_docs, args.hot_per_doc, 0, args.cold_docs,
                       random.Random(args.seed))
    hot = split["hot"]
    work = Path(tempfile.mkdtemp(prefix="distill-ablation-"))
    settings = ingest_bank(work, docs, facts, args.distractors, args.seed)
    base = HFGenerator(settings.generation, adapter="")
    qa = QAPipeline.from_config(settings.override({"answer.style": "extractive"}), generator=base)
    result: dict[str, Any] = {"seed": args.seed, "hot_facts": len(hot), "docs": len(docs),
                              "distractors": args.distractors, "traffic": traffic(qa, hot, split["cold"]),
                              "variants": {}}
    qa.close()
    sets = {"asked": items(hot, "asked"), "unseen": items(hot, "unseen")}
    out = Path(args.out)
    for name, changes in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        result["variants"][name] = run_variant(name, changes, settings, work / "kb", base, sets)
        out.write_text(json.dumps(result, indent=2, default=str))
    text = table(result)
    out.with_suffix(".md").write_text(f"Distillation recipe ablation (seed {args.seed}, {len(hot)} hot facts, "
                                      f"{args.distractors} distractors; `{' '.join(sys.argv)}`)\n\n{text}\n")
    print(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
