"""Distillation benchmark on SciFact: does a round fold the asked-about abstracts into the weights?

Documents cited by two or more labelled claims (train + test qrels) are split: for ``--docs`` of them, some claims are
"asked" (logged as traffic, three times each, with the cited abstract as the retrieved passage, i.e. what a perfect
retriever returns) and the others stay unseen; ``--other`` further documents are never distilled (regression).
One ``DistillRound`` runs; label accuracy (SUPPORT / CONTRADICT by likelihood) is measured closed-book and
open-book before and after, with the recovery ratio ``(closed_after - closed_before) / (open_before -
closed_before)``, plus the round's own knowledge probes. Writes ``bench/results/distill.json`` and prints a table.

    python bench/distill.py --docs 8 --other 4 --max-steps 24
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.distill.data import Prompter  # noqa: E402
from knowledge.kb import KnowledgeBase  # noqa: E402
from knowledge.log import RetrievalLog  # noqa: E402
from pipelines.distill import DistillRound  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.generate import HFGenerator  # noqa: E402
from rag.types import Answer, Hit, Passage, content_hash  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"  # ../shared beside the project
LABELS = ("SUPPORT", "CONTRADICT")
ASK = "Is the following claim supported or contradicted by the research? Answer SUPPORT or CONTRADICT.\nClaim: {}"


def load(data: Path) -> tuple[dict[str, dict], dict[str, list[tuple[str, str]]]]:
    """Corpus by id, and doc id -> [(claim, label)] for labelled claims."""
    corpus = {r["_id"]: r for r in map(json.loads, (data / "corpus.jsonl").open())}
    claims: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in map(json.loads, (data / "queries.jsonl").open()):
        for doc, evidence in (row.get("metadata") or {}).items():
            if evidence and evidence[0]["label"] in LABELS and doc in corpus:
                claims[doc].append((row["text"], evidence[0]["label"]))
    return corpus, claims


def passage(doc: dict) -> Passage:
    text = doc["text"][:1200]  # keep prompts short on CPU; the first sentences hold most findings
    return Passage(content_hash(text), text, doc["_id"], f"scifact/{doc['_id']}", doc["title"])


def build_kb(root: Path, docs: list[Passage], asked: dict[str, list[str]]) -> None:
    with KnowledgeBase.open(root, embedding={"model": "oracle", "dimension": 1}, create=True) as kb:
        kb.store.replace_source("scifact", "h", 1, 0.0, "{}", docs, [p.text for p in docs], len(docs))
        kb.store.assign_vectors([(p.id, i) for i, p in enumerate(docs)])
        log = RetrievalLog(kb.store, Settings().log)
        by_id = {p.id: p for p in docs}
        for pid, questions in asked.items():
            for n, claim in enumerate(questions * 3):
                log.record(Answer(id=f"{pid}-{n}", question=ASK.format(claim), text="", hits=(Hit(by_id[pid], 1.0, 1),)))


def accuracy(gen: HFGenerator, prompter: Prompter, items: list[tuple[Passage, str, str]], open_book: bool) -> float:
    right = 0
    for p, claim, label in items:
        prompt = prompter.open(ASK.format(claim), [p]) if open_book else prompter.closed(ASK.format(claim))
        right += gen.choose(prompt, LABELS)[0] == label
    return right / len(items) if items else float("nan")


def measure(gen: HFGenerator, prompter: Prompter, sets: dict[str, list]) -> dict[str, float]:
    out = {f"closed_{k}": accuracy(gen, prompter, v, False) for k, v in sets.items()}
    return out | {f"open_{k}": accuracy(gen, prompter, v, True) for k, v in sets.items()}


def recovery(before: dict, after: dict, group: str) -> float | None:
    gap = before[f"open_{group}"] - before[f"closed_{group}"]
    return None if abs(gap) < 1e-9 else (after[f"closed_{group}"] - before[f"closed_{group}"]) / gap


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--other", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids OpenMP spinning on busy CPUs)")
    ap.add_argument("--out", default="bench/results/distill.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus, claims = load(DATA)
    eligible = sorted(d for d, c in claims.items() if len(c) >= 2)
    rng = random.Random(0)
    chosen = rng.sample(eligible, args.docs + args.other)
    docs = {d: passage(corpus[d]) for d in chosen}
    distilled, others = chosen[: args.docs], chosen[args.docs:]
    asked = {docs[d].id: [c for c, _ in claims[d][: len(claims[d]) // 2]] for d in distilled}
    sets = {"asked": [(docs[d], c, lab) for d in distilled for c, lab in claims[d][: len(claims[d]) // 2]],
            "unseen": [(docs[d], c, lab) for d in distilled for c, lab in claims[d][len(claims[d]) // 2:]],
            "other": [(docs[d], c, lab) for d in others for c, lab in claims[d]]}
    root = Path(tempfile.mkdtemp(prefix="distill-bench-")) / "kb"
    build_kb(root, list(docs.values()), asked)
    settings = Settings().override({
        "kb.path": str(root), "generation.max_new_tokens": 48, "distill.min_hits": 2, "distill.max_steps": args.max_steps,
        "distill.restatements": 1, "distill.max_passages": args.docs})
    base = HFGenerator(settings.generation, adapter="")
    prompter = Prompter(base, settings.prompt, 48)
    before = measure(base, prompter, sets)
    t0 = time.perf_counter()
    report = DistillRound(settings, generator=base, other_passages=args.other).run()
    round_s = time.perf_counter() - t0
    adapted = HFGenerator(settings.generation, adapter=str(root / "adapters" / report.adapter)) if report.adapter else base
    after = measure(adapted, Prompter(adapted, settings.prompt, 48), sets)
    result = {
        "docs_distilled": args.docs, "docs_other": args.other, "eligible_docs": len(eligible),
        "claims": {k: len(v) for k, v in sets.items()}, "before": before, "after": after,
        "recovery": {g: recovery(before, after, g) for g in ("asked", "unseen")},
        "round": report.to_dict(), "round_s": round(round_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print_table(result)


def print_table(r: dict) -> None:
    print(f"{'metric':<16}{'before':>9}{'after':>9}")
    for key in r["before"]:
        print(f"{key:<16}{r['before'][key]:>9.3f}{r['after'][key]:>9.3f}")
    for group in ("closed", "open", "other"):
        m = r["round"]["metrics"].get(group) or {}
        if m.get("delta") is not None:
            print(f"probe_{group:<10}{m['before']:>9.4f}{m['after']:>9.4f}")
    print(f"recovery {r['recovery']}  promoted={r['round']['promoted']} ({r['round']['reason']})")
    print(f"round {r['round_s']} s, peak RSS {r['peak_rss_mb']} MB, claims {r['claims']}")


if __name__ == "__main__":
    main()
