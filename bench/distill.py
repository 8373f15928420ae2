"""Knowledge-injection benchmark: does a distillation round move invented facts from retrieval into the weights?

Seeded invented entities (``bench/factbank.py``: devices, people, villages, 6 attributes each) are ingested with
distractors (the bundled sample corpus, and SciFact abstracts when ``../shared/data`` is there). Users' traffic
goes through ``QAPipeline.ask`` with real retrieval: every *hot* fact is asked in 3 phrasings. Then one
``DistillRound`` runs as a user would run it, and the sets below are measured closed-book and open-book (real
retrieval, the same prompts the pipeline builds), before and after, by normalised containment of the answer:

  (a) asked      the 3 asked phrasings of each hot fact
  (b) unseen     2 paraphrases of each hot fact that nobody asked
  (c) same-doc   facts of the distilled documents that were never asked
  (d) other      facts of documents that were not distilled
  (e) general    the shipped general-ability set (knowledge/distill/general.jsonl)
  (f) pubmedqa   yes/no/maybe by likelihood on a seeded PubMedQA test sample (closed and with its abstract)

Recovery ratio = (closed after - closed before) / (open before - closed before), only where open-book beats
closed-book before. Then ``generation.mode = "auto"`` routing (share routed, precision, latency vs "rag"), and a
second round on new hot facts with the retention of round-1 facts.

    python bench/distill.py --entities 30 --hot-docs 14 --hot-per-doc 3      # ~40 hot facts (the issue's size)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.factbank import Fact, gold_correct, lent_value, make_bank, make_lookalike_bank, write_bank  # noqa: E402
from knowledge.distill.data import Prompter  # noqa: E402
from rag.text import normalise  # noqa: E402
from pipelines.config import Settings  # noqa: E402
from pipelines.distill import DistillReport, DistillRound  # noqa: E402
from pipelines.ingest import IngestPipeline  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.generation.backends import make_generator  # noqa: E402
from rag.generation.generate import HFGenerator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ANSWER_TOKENS = 32
TRAFFIC_TOKENS = 16  # users' answers only matter to the log (hits, citations); short keeps the bench affordable
Item = tuple[str, Fact]  # a question and the fact it asks for (scored against gold: ``factbank.gold_correct``)


def items(facts: list[Fact], field: str, limit: int = 3) -> list[Item]:
    return [(q, f) for f in facts for q in getattr(f, field)[:limit]]


def build_corpus(work: Path, docs: list[dict], facts: list[Fact], distractors: int, seed: int) -> Path:
    corpus = work / "corpus"
    write_bank(docs, facts, corpus / "facts")
    (corpus / "facts" / "facts.jsonl").unlink()  # the answer key is not a document
    scifact = SHARED / "scifact" / "corpus.jsonl"
    if distractors and scifact.is_file():
        rows = [json.loads(line) for line in scifact.open(encoding="utf-8")]
        pick = random.Random(seed).sample(rows, min(distractors, len(rows)))
        (corpus / "scifact.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pick), encoding="utf-8")
    return corpus


def ingest_bank(work: Path, docs: list[dict], facts: list[Fact], distractors: int, seed: int,
                overrides: dict[str, Any] | None = None) -> Settings:
    """The bench's KB under ``work``: the bank, the distractors and the sample corpus; returns its settings."""
    corpus = build_corpus(work, docs, facts, distractors, seed)
    settings = Settings().override({"kb.path": str(work / "kb"), "ingest.show_progress": False,
                                    "generation.max_new_tokens": ANSWER_TOKENS, "retrieval.k": 3})
    settings = settings.override(overrides, "--set") if overrides else settings
    IngestPipeline.from_config(settings).run([str(corpus), str(ROOT / "knowledge" / "sample")])
    return settings


PER_FACT = {"asked": 3, "unseen": 2, "same_doc": 1, "other": 2}  # phrasings per fact in each set
SERVED_SETS = ("asked", "unseen", "other")  # what --round-only and --served-from measure closed-book


def answer(gen: HFGenerator, prompts: list[str]) -> list[str]:
    return gen.generate_batch(prompts, max_new_tokens=ANSWER_TOKENS)


def score(preds: list[str], rows: list[Item], bank: list[Fact] = ()) -> dict[str, float]:
    """Gold accuracy (``contains``), exact match, and how often an answer states another entity's value (``lent``)."""
    hit = [gold_correct(p, f) for p, (_, f) in zip(preds, rows, strict=True)]
    em = [normalise(p).rstrip(" .") == normalise(f.answer) for p, (_, f) in zip(preds, rows, strict=True)]
    lent = [lent_value(p, f, bank) for p, (_, f) in zip(preds, rows, strict=True)] if bank else []
    # a few lent answers, as asked and answered: what a look-alike question got instead of "I do not know."
    seen = [{"question": q, "answer": p} for p, (q, _), x in zip(preds, rows, lent, strict=False) if x][:5]
    return {"contains": sum(hit) / len(hit), "em": sum(em) / len(em), "n": len(hit)} | (
        {"lent": sum(lent), "lent_examples": seen} if bank else {})


def measure(qa: QAPipeline, gen: HFGenerator, sets: dict[str, list[Item]], per_fact: dict[str, int],
            open_book: bool = True, bank: list[Fact] = ()) -> dict[str, Any]:
    """Closed-book scores of every set; open-book (real retrieval, the pipeline's own prompts) on one phrasing per
    fact. The general-ability set is measured by the round's own gate (same prompts, same scoring)."""
    out = {}
    for name, rows in sets.items():
        closed = [qa.builder.build_closed_book(q).text for q, _ in rows]
        out[f"closed_{name}"] = score(answer(gen, closed), rows, bank)
        if not open_book:
            continue
        first = rows[:: per_fact[name]]
        opened = [qa.builder.build(q, qa.retriever.retrieve(q, None, None)).text for q, _ in first]
        out[f"open_{name}"] = score(answer(gen, opened), first, bank)
    return out


def served_closed(pipe: QAPipeline, sets: dict[str, list[Item]], bank: list[Fact]) -> dict[str, Any]:
    """Closed-book scores as the product serves them (``ClosedBook.answer``: a question about a subject the
    adapter never learnt, or whose adapter answer is not in the passage it learnt about that subject
    (``vouched``), goes to the base model), with how many answers the adapter gave and how many of them lost a
    clause that lent (``trimmed``); the answers are scored as shown. Batched: the same two checks."""
    out = {}
    for name, rows in sets.items():
        prompts = [pipe.builder.build_closed_book(q).text for q, _ in rows]
        chosen = [pipe.closed_book.model(q) for q, _ in rows]
        preds = [""] * len(rows)
        to_adapter = [i for i, m in enumerate(chosen) if m is pipe.closed_generator]
        for i, a in zip(to_adapter, answer(pipe.closed_generator, [prompts[i] for i in to_adapter])):
            preds[i] = a
        shown = {i: pipe.closed_book.vouched(rows[i][0], preds[i]) for i in to_adapter}
        kept = [i for i in to_adapter if shown[i] is not None]
        trimmed = sum(shown[i] != pipe.closed_book.shown(preds[i]) for i in kept)
        for i in kept:
            preds[i] = shown[i]  # as shown: its first sentences, clauses that lend cut
        rest = [i for i in range(len(rows)) if i not in set(kept)]
        for i, a in zip(rest, answer(pipe.generator, [prompts[i] for i in rest])):
            preds[i] = a
        out[f"closed_{name}"] = score(preds, rows, bank) | {"to_adapter": len(to_adapter), "vouched": len(kept),
                                                               "trimmed": trimmed}
    return out


def earlier_run(work: Path) -> tuple[Settings, str]:
    """The round settings and the active adapter's folder an earlier run left in ``work``."""
    settings = Settings.model_validate(json.loads((work / "round-settings.json").read_text()))
    active = json.loads((work / "kb" / "adapters" / "active.json").read_text())["active"]
    return settings, str(work / "kb" / "adapters" / active)


def served_again(work: Path, out: Path, sets: dict[str, list[Item]], bank: list[Fact], hot: list[Fact],
                 cold: list[Fact], other: list[Fact]) -> None:
    """``closed_served`` once more, with the code as it is now, on the KB and active adapter an earlier run left
    in ``work``; the result replaces ``closed_served`` in ``out`` (the earlier figures kept as
    ``closed_served_before``). The sets must be the same run's: ``out``'s sizes are checked."""
    result = json.loads(out.read_text())
    settings, adapter = earlier_run(work)
    if "closed_before" not in result:  # a --round-only run stopped after its round: its closed-book sets first
        if "taught" not in result or result.get("hot_facts", len(hot)) != len(hot):
            raise SystemExit(f"--served-from: {out} holds no round of this setup")
        result["sizes"] = {k: len(v) for k, v in sets.items()}
        result["hot_facts"] = len(hot)
        qa = QAPipeline.from_config(settings, generator=HFGenerator(settings.generation, adapter=""))
        for key, name in (("closed_before", ""), ("closed_after", adapter)):
            result[key] = measure(qa, make_generator(settings.generation, adapter=name), sets, PER_FACT,
                                  open_book=False, bank=bank)
        qa.close()
    if any(result["sizes"].get(k) != len(v) for k, v in sets.items()):
        raise SystemExit(f"--served-from: {out} holds other sets ({result['sizes']})")
    product = QAPipeline.from_config(settings, adapter=adapter)
    result["closed_served_before"] = result.get("closed_served")
    result["closed_served"] = served_closed(product, sets, bank)
    served_extras(product, result, settings, work / "kb", adapter, sets, bank, hot, cold, other)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: result.get(k) for k in ("closed_served", "open_asked", "open_unseen", "recovery_served",
                                                 "recovery_served_unseen", "yield", "lowercase_served",
                                                 "lowercase_raw", "routing")}, indent=1))


def routing_again(work: Path, out: Path, hot: list[Fact], cold: list[Fact], other: list[Fact]) -> None:
    """Only ``routing``, with the code as it is now, on the KB and active adapter an earlier run left in ``work``."""
    result = json.loads(out.read_text())
    if result.get("hot_facts") != len(hot):
        raise SystemExit(f"--routing-from: {out} holds another run ({result.get('hot_facts')} hot facts)")
    settings, adapter = earlier_run(work)
    result["routing_before"] = result.get("routing")
    result["routing"] = routing(settings, work / "kb", adapter, hot, cold, other)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result["routing"], indent=1))


def served_extras(product: QAPipeline, result: dict[str, Any], settings: Settings, kb: Path, adapter: str,
                  sets: dict[str, list[Item]], bank: list[Fact], hot: list[Fact], cold: list[Fact],
                  other: list[Fact] = ()) -> None:
    """After ``closed_served``: the open-book baselines (base model, RAG prompt, one phrasing per fact) of the asked
    questions and their never-asked paraphrases, served recovery on both, taught yield; questions typed without
    capitals (served, and the adapter's raw answers: what they got when only capitals named a subject); and
    ``auto`` routing against ``rag`` through ``QAPipeline.ask``. Closes ``product``."""
    for name in [n for n in ("asked", "unseen") if n in sets]:
        if f"open_{name}" not in result:  # deterministic: measured once per run
            result[f"open_{name}"] = open_book(product, product.generator, sets[name], bank, PER_FACT[name])
        result["recovery_served" + ("" if name == "asked" else f"_{name}")] = served_recovery(result, name)
    result["yield"] = taught_yield(result)
    lower = {k: [(q.lower(), f) for q, f in rows[:: PER_FACT[k]]] for k, rows in sets.items()}
    result["lowercase_served"] = served_closed(product, lower, bank)
    result["lowercase_raw"] = {f"closed_{k}": score(answer(product.closed_generator, [
        product.builder.build_closed_book(q).text for q, _ in rows]), rows, bank) for k, rows in lower.items()}
    product.close()
    result["routing"] = routing(settings, kb, adapter, hot, cold, other)


def open_book(qa: QAPipeline, gen: HFGenerator, rows: list[Item], bank: list[Fact], per: int) -> dict[str, Any]:
    """Open-book (the pipeline's retrieval and RAG prompt, the base model) on one phrasing per fact (``per``
    phrasings each in ``rows``): what closed-book answers are to recover."""
    first = rows[::per]
    prompts = [qa.builder.build(q, qa.retriever.retrieve(q, None, None)).text for q, _ in first]
    return score(answer(gen, prompts), first, bank)


def taught_yield(result: dict[str, Any]) -> float | None:
    """Right facts taught per hot question the base model answered right open-book (``open_asked``)."""
    opened = result["open_asked"]["contains"] * result["open_asked"]["n"]
    return round(result["taught"]["right"] / opened, 3) if opened and "taught" in result else None


def served_recovery(result: dict[str, Any], name: str = "asked") -> float | None:
    """Recovery on set ``name`` as served: (served closed-book - base closed-book) / (open-book - base closed-book),
    against gold; None when open-book is no better than the base model closed-book."""
    base = result["closed_before"][f"closed_{name}"]["contains"]
    gap = result[f"open_{name}"]["contains"] - base
    return None if gap <= 0 else round((result["closed_served"][f"closed_{name}"]["contains"] - base) / gap, 3)


def pubmedqa(gen: HFGenerator, prompter: Prompter, n: int, seed: int) -> dict[str, float] | None:
    data = SHARED / "pubmedqa"
    if n <= 0 or not (data / "ori_pqal.json").is_file():
        return None
    rows = json.loads((data / "ori_pqal.json").read_text())
    test = json.loads((data / "test_ground_truth.json").read_text())
    ids = random.Random(seed).sample(sorted(test), n)
    right = {"closed": 0, "open": 0}
    from rag.types import Passage

    for pmid in ids:
        q, context = rows[pmid]["QUESTION"], " ".join(rows[pmid]["CONTEXTS"])
        ask = f"{q} Answer yes, no or maybe."
        right["closed"] += gen.choose(prompter.closed(ask), ("yes", "no", "maybe"))[0] == test[pmid]
        p = Passage(pmid, context, pmid, f"pubmed/{pmid}", "")
        right["open"] += gen.choose(prompter.open(ask, [p]), ("yes", "no", "maybe"))[0] == test[pmid]
    return {k: v / n for k, v in right.items()} | {"n": n}


def traffic_settings(settings: Settings) -> Settings:
    """Users' asks only matter to the log (hits, citations): extractive answers log the same, without generating."""
    return settings.override({"generation.max_new_tokens": TRAFFIC_TOKENS, "answer.style": "extractive"})


def traffic(qa: QAPipeline, facts: list[Fact], cold: list[Fact] = ()) -> dict[str, float]:
    """Users ask every hot fact in its 3 phrasings, and each ``cold`` fact once (too rarely to be distilled: what
    users ask about the rest of the KB); returns how often retrieval ranked the hot fact's document first."""
    top1 = 0
    for f in facts:
        for q in f.asked:
            a = qa.ask(q)
            top1 += bool(a.hits) and a.hits[0].passage.title == f.doc
    for f in cold:
        qa.ask(f.asked[0])
    return {"asks": 3 * len(facts), "cold_asks": len(cold), "top1_doc": top1 / (3 * len(facts))}


def split_docs(names: list[str], facts: list[Fact], hot_docs: int, hot_per_doc: int, round2_docs: int,
               cold_docs: int, rng: random.Random) -> dict[str, list[Fact]]:
    """Hot facts (and the never-asked rest of their documents), round-2 hot facts, one cold fact per cold document
    (asked once), and the facts of the remaining documents (never asked: the "other" set)."""
    by_doc = {n: [f for f in facts if f.doc == n] for n in names}
    out: dict[str, list[Fact]] = {"hot": [], "same_doc": [], "r2": [], "cold": [], "other": []}
    for n in names[:hot_docs]:
        attrs = _hot_first(by_doc[n], hot_per_doc, rng)
        out["hot"] += attrs[:hot_per_doc]
        out["same_doc"] += attrs[hot_per_doc:]
    out["r2"] = [f for n in names[hot_docs: hot_docs + round2_docs] for f in rng.sample(by_doc[n], hot_per_doc)]
    start = hot_docs + round2_docs
    out["cold"] = [by_doc[n][0] for n in names[start: start + cold_docs]]
    out["other"] = [f for n in names[start + cold_docs:] for f in by_doc[n]]
    return out


def _hot_first(facts: list[Fact], n: int, rng: random.Random) -> list[Fact]:
    """A document's facts shuffled, with at least a third of the first ``n`` naming the entity by attributes
    (when the bank has such questions: the look-alike bank)."""
    by_attr = rng.sample([f for f in facts if f.by == "attributes"], sum(f.by == "attributes" for f in facts))
    by_name = rng.sample([f for f in facts if f.by != "attributes"], sum(f.by != "attributes" for f in facts))
    k = min(len(by_attr), -(-n // 3)) if by_attr else 0
    head = by_attr[:k] + by_name[: n - k]
    rest = [f for f in facts if f not in head]
    return head + rng.sample(rest, len(rest))


def asked_fact(bank: list[Fact]) -> dict[str, Fact]:
    """Every phrasing of the bank (asked and unseen) -> the fact it asks for."""
    return {q: f for f in bank for q in (*f.asked, *f.unseen)}


def teach_only(settings: Settings, base: HFGenerator, bank: list[Fact]) -> dict[str, Any]:
    """The facts a round would teach from the logged traffic, scored against gold (the teacher alone, no training)."""
    from knowledge.distill.adapters import AdapterRegistry
    from knowledge.kb import KnowledgeBase
    from knowledge.log import RetrievalLog

    by_question = asked_fact(bank)
    t0 = time.perf_counter()
    with KnowledgeBase.open(settings.kb.path) as kb:
        plan = DistillRound(settings, generator=base, progress=False).plan(
            kb, AdapterRegistry(kb.root), RetrievalLog(kb.store, settings.log))
    graded = [(q, f, by_question[q]) for f in plan.facts for q in f.questions if q in by_question]
    keys = {(g.entity, g.attribute) for _, _, g in graded}
    wrong = [(q, f, g) for q, f, g in graded if not gold_correct(f.answer, g)]
    bad = {(g.entity, g.attribute) for _, _, g in wrong}
    near = plan.neighbours(settings.distill.neighbours)
    # a look-alike question must ask about another author than the fact's (its rival's title is that author)
    entity = {f.entity for f in bank}
    own = [n for n in near if n.rival.title not in entity or by_question.get(n.fact.questions[0]) is None
           or by_question[n.fact.questions[0]].entity == n.rival.title]
    return {"seconds": round(time.perf_counter() - t0, 1), "passages": len(plan.chosen), "facts": len(plan.facts),
            "taught": len(keys), "right": len(keys - bad), "precision": len(keys - bad) / len(keys) if keys else None,
            "questions": len(graded), "questions_right": len(graded) - len(wrong), "stats": plan.stats,
            "wrong": [{"question": q, "taught": f.answer, "gold": g.answer} for q, f, g in wrong],
            "neighbours": {"n": len(near), "not_another_author": len(own),
                           "examples": [[n.fact.questions[0], n.question] for n in near[:8]]}}


def taught(adapter: Path, bank: list[Fact]) -> dict[str, Any]:
    """Every fact the round taught, scored against gold: its trained question -> answer pairs, and the asked
    phrasings it held out for the gate with the answer the gate expects (the teacher verified those too, and the
    gate counts the adapter repeating them as learnt); taught-fact precision, and the wrong ones."""
    from knowledge.distill.data import read_jsonl

    by_question = asked_fact(bank)
    answers: dict[tuple[str, str], list[str]] = {}
    for e in read_jsonl(adapter / "train.jsonl"):
        fact = by_question.get(e.question)
        if e.kind == "question" and fact is not None:
            answers.setdefault((fact.entity, fact.attribute), []).append(e.answer)
    for line in (adapter / "gate.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        fact = by_question.get(item.get("question", ""))
        if item["group"] == "heldout" and fact is not None:  # its key spans, ordered as in the gold answer
            spans = sorted(item["spans"], key=lambda x: normalise(fact.answer).find(normalise(x)))
            answers.setdefault((fact.entity, fact.attribute), []).append(" ".join(spans))
    facts = {(f.entity, f.attribute): f for f in bank}
    right = {k for k, v in answers.items() if all(gold_correct(a, facts[k]) for a in v)}
    wrong = [{"entity": k[0], "attribute": k[1], "gold": facts[k].answer, "taught": sorted(set(v))}
             for k, v in answers.items() if k not in right]
    return {"taught": len(answers), "right": len(right),
            "precision": len(right) / len(answers) if answers else None, "wrong": wrong,
            "right_keys": sorted(f"{e}|{a}" for e, a in right)}


def routing(settings: Settings, kb: Path, adapter: str, hot: list[Fact], cold: list[Fact],
            other: list[Fact] = ()) -> dict[str, Any]:
    """``generation.mode = "auto"`` vs ``"rag"`` through ``QAPipeline.ask``: unseen phrasings of hot facts, cold
    facts and (``groups`` only) facts of never-asked documents, look-alikes of the learnt ones (up to as many as
    the hot facts). The totals are over hot and cold, as before; ``groups`` has each group's accuracy in both
    modes (routing must lose none), and ``on_routed`` both modes' times and answers on the questions ``auto``
    routes closed-book (``rag`` can be faster overall only because it abstains early on paraphrases)."""
    groups = {"hot_unseen": items(hot, "unseen", 1), "cold": items(cold, "asked", 1),
              "other": items(list(other)[: len(hot)], "asked", 1)}
    rows = [r for g in groups.values() for r in g]
    got: dict[str, list] = {}
    for mode in ("rag", "auto"):
        s = settings.override({"generation.mode": mode, "generation.max_new_tokens": ANSWER_TOKENS})
        qa = QAPipeline.from_config(s, kb=kb, adapter=adapter)
        got[mode] = [qa.ask(q, log=False) for q, _ in rows]
        qa.close()
    right = {m: [gold_correct(a.text, r[1]) for a, r in zip(answers, rows)] for m, answers in got.items()}
    main = range(len(groups["hot_unseen"]) + len(groups["cold"]))  # the totals reported before groups
    taken = [i for i in main if got["auto"][i].path == "closed"]
    out: dict[str, Any] = {}
    for mode, answers in got.items():
        out[mode] = {
            "n": len(main), "routed": len(taken) if mode == "auto" else 0,
            "routed_correct": sum(right[mode][i] for i in taken) if mode == "auto" else 0,
            "accuracy": sum(right[mode][i] for i in main) / len(main),
            "abstained": sum(answers[i].abstained for i in main),
            "median_total_s": statistics.median(answers[i].timings["total_s"] for i in main),
            "on_routed": {"correct": sum(right[mode][i] for i in taken),
                          "abstained": sum(answers[i].abstained for i in taken),
                          "median_total_s": statistics.median(answers[i].timings["total_s"] for i in taken)
                          if taken else None},
        }
    auto = out["auto"]
    auto["precision"] = auto["routed_correct"] / auto["routed"] if auto["routed"] else None
    auto["share_routed"] = auto["routed"] / auto["n"]
    auto["on_routed_seconds_ratio_to_rag_p50"] = round(statistics.median(
        got["auto"][i].timings["total_s"] / got["rag"][i].timings["total_s"] for i in taken), 3) if taken else None
    # the fair speed comparison: routed questions that ``rag`` answered (it did not abstain), and what a failed
    # routing attempt (the adapter's answer did not check out: the ask goes on to RAG) adds to the rest
    answered = [i for i in taken if not got["rag"][i].abstained]
    auto["on_routed_rag_answered"] = {"n": len(answered)} | ({
        f"{m}_median_total_s": round(statistics.median(got[m][i].timings["total_s"] for i in answered), 3)
        for m in got} if answered else {})
    tried = [i for i in main if i not in set(taken) and got["rag"][i].path == "rag"]
    auto["not_routed_extra_s_p50"] = round(statistics.median(
        got["auto"][i].timings["total_s"] - got["rag"][i].timings["total_s"] for i in tried), 3) if tried else None
    auto["routed_completion_tokens_p50"] = statistics.median(
        got["auto"][i].tokens["completion"] for i in taken) if taken else None
    out["groups"], start = {}, 0
    for name, group in groups.items():
        span = range(start, start + len(group))
        start += len(group)
        out["groups"][name] = {"n": len(group), "routed": sum(got["auto"][i].path == "closed" for i in span)} | {
            f"{m}_correct": sum(right[m][i] for i in span) for m in got}
    return out


def recovery(before: dict, after: dict, group: str) -> float | None:
    gap = before[f"open_{group}"]["contains"] - before[f"closed_{group}"]["contains"]
    if gap <= 0:  # open-book is no better than closed-book: there is nothing to recover
        return None
    return (after[f"closed_{group}"]["contains"] - before[f"closed_{group}"]["contains"]) / gap


def stage(name: str, t0: list[float], result: dict[str, Any] | None = None, out: str = "") -> None:
    """Progress on stderr (the bench runs for many minutes), and the results so far written to ``out``."""
    print(f"[{time.perf_counter() - t0[0]:7.1f} s] {name}", file=sys.stderr, flush=True)
    if result is not None and out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result | {"partial": name}, indent=2, default=str))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=30)
    ap.add_argument("--hot-docs", type=int, default=14)
    ap.add_argument("--hot-per-doc", type=int, default=3)
    ap.add_argument("--distractors", type=int, default=300, help="SciFact abstracts mixed in (when available)")
    ap.add_argument("--pubmedqa", type=int, default=60)
    ap.add_argument("--round2-docs", type=int, default=6, help="0 = no second round")
    ap.add_argument("--cold-docs", type=int, default=6, help="documents asked about once (one fact each)")
    ap.add_argument("--routing-n", type=int, default=24, help="hot facts asked in rag and auto mode (+ half as many cold)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="setting override, e.g. distill.epochs=6")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default; 1 on a busy box)")
    ap.add_argument("--before-from", help="reuse the 'before' figures of an earlier result JSON of the same setup "
                                          "(the base model's answers on the same seeded KB: deterministic)")
    ap.add_argument("--in-process", action="store_true",
                    help="run rounds in this process (default: `rag distill --json` in a child, to measure its RSS)")
    ap.add_argument("--one-round", action="store_true",
                    help="stop after round 1 (the round-2 documents stay out of the 'other' set, so --before-from "
                         "still matches a two-round run)")
    ap.add_argument("--open-book-examples", action="store_true",
                    help="ablation: also train each fact open-book (passage in the prompt) under adapter_scope "
                         "'closed', as rounds did before; runs the round in process")
    ap.add_argument("--bank", choices=("invented", "lookalike"), default="invented",
                    help="lookalike: author biographies in families sharing city, genre and award pattern (--entities "
                         "is rounded down to families of 4)")
    ap.add_argument("--traffic", choices=("default", "extractive"), default="default",
                    help="answer style of the users' asks (the log only keeps hits and citations: extractive is the "
                         "same retrieval without generating, several times cheaper)")
    ap.add_argument("--teach-only", action="store_true",
                    help="stop after the teacher: which facts a round would teach, scored against gold (no training)")
    ap.add_argument("--round-only", action="store_true",
                    help="run the round after the traffic and stop: its gate, taught-fact precision, time and memory "
                         "(the rounds-by-size table; no before/after sets, no routing)")
    ap.add_argument("--served-from", metavar="WORK",
                    help="with --round-only: re-measure closed_served, the open-book baseline, served recovery and "
                         "auto routing on an earlier run's work directory "
                         "(its KB and active adapter; same seed and sizes) into --out's existing result")
    ap.add_argument("--routing-from", metavar="WORK",
                    help="re-measure only auto against rag routing on an earlier run's work directory into --out")
    ap.add_argument("--out", default="bench/results/distill.json")
    args = ap.parse_args()
    if args.open_book_examples:
        import pipelines.distill as distill_round

        plain = distill_round.build_dataset
        distill_round.build_dataset = lambda *a, **k: plain(*a, **(k | {"open_book": True}))
        args.in_process = True
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    clock = [t_start]
    docs, facts = (make_lookalike_bank(args.entities // 4, 4, args.seed) if args.bank == "lookalike"
                   else make_bank(args.entities, args.seed))
    split = split_docs([d["name"] for d in docs], facts, args.hot_docs, args.hot_per_doc, args.round2_docs,
                       args.cold_docs, random.Random(args.seed))
    hot, same_doc, other, r2_hot = split["hot"], split["same_doc"], split["other"], split["r2"]
    per_fact = PER_FACT
    sets = {"asked": items(hot, "asked"), "unseen": items(hot, "unseen"), "same_doc": items(same_doc, "asked", 1),
            "other": items(other, "asked", 2)}
    if args.served_from:
        served_again(Path(args.served_from), Path(args.out), {k: sets[k] for k in SERVED_SETS}, facts,
                     hot, split["cold"], other)
        return
    if args.routing_from:
        routing_again(Path(args.routing_from), Path(args.out), hot, split["cold"], other)
        return
    work = Path(tempfile.mkdtemp(prefix="distill-bench-"))
    overrides = dict(kv.split("=", 1) for kv in args.set)
    settings = ingest_bank(work, docs, facts, args.distractors, args.seed,
                           {k: json.loads(v) for k, v in overrides.items()})
    base = HFGenerator(settings.generation, adapter="")  # the teacher (the round trains and teaches on transformers)
    # what users get closed-book: the serving backend (llama.cpp when built), as the round's gate measures it
    served = make_generator(settings.generation, adapter="")
    qa = QAPipeline.from_config(settings, generator=base)
    prompter = Prompter(base, settings.prompt, ANSWER_TOKENS)
    from bench.docs import machine

    result: dict[str, Any] = {"machine": machine(), "seed": args.seed, "settings": overrides, "sizes": {k: len(v) for k, v in sets.items()},
                              "hot_facts": len(hot), "docs": len(docs), "distractors": args.distractors,
                              "bank": args.bank, "hot_by_attributes": sum(f.by == "attributes" for f in hot)}
    stage("ingested", clock)
    users = qa if args.traffic == "default" else QAPipeline.from_config(traffic_settings(settings), generator=base)
    result["traffic"] = traffic(users, hot, split["cold"]) | {"style": args.traffic}
    stage("traffic asked", clock, result, args.out)
    if args.teach_only:
        result["teacher"] = teach_only(settings, base, facts)
        result["total_s"] = round(time.perf_counter() - t_start, 1)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps({k: v for k, v in result["teacher"].items() if k != "wrong"}, indent=1))
        return
    if args.round_only:
        report, cost = run_round(settings, work, base, args.in_process)
        result["round1"] = report.to_dict() | cost
        if report.adapter:
            result["taught"] = taught(work / "kb" / "adapters" / report.adapter, facts)
            # closed-book, gold: the adapter's answers to the asked and the never-asked authors' questions, and how
            # often they state another author's title, award, date or name (``lent``), against the base model's
            adapted = make_generator(settings.generation, adapter=str(work / "kb" / "adapters" / report.adapter))
            lend = {k: sets[k] for k in SERVED_SETS}
            result["closed_before"] = measure(qa, served, lend, per_fact, open_book=False, bank=facts)
            result["closed_after"] = measure(qa, adapted, lend, per_fact, open_book=False, bank=facts)
            del adapted
            stage("closed-book measured", clock, result, args.out)
            # the same questions through the product's closed-book path (generation.adapter_subjects)
            adapter = str(work / "kb" / "adapters" / report.adapter)
            product = QAPipeline.from_config(settings, adapter=adapter)
            result["closed_served"] = served_closed(product, lend, facts)
            if report.promoted:  # routing asks with the active adapter
                served_extras(product, result, settings, work / "kb", adapter, lend, facts, hot, split["cold"],
                              other)
            else:
                product.close()
        result["total_s"] = round(time.perf_counter() - t_start, 1)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps({"promoted": report.promoted, "reason": report.reason, "facts": report.metrics.get("facts"),
                          "precision": result.get("taught", {}).get("precision"), **cost,
                          "closed_after": result.get("closed_after"),
                          **{k: result.get(k) for k in ("closed_served", "open_asked", "open_unseen", "recovery_served",
                                                        "recovery_served_unseen", "yield", "routing")}}, indent=1))
        return
    if args.before_from:  # the base model on the same seeded KB and sets: deterministic, so an earlier run's figures
        earlier = json.loads(Path(args.before_from).read_text())
        same = {k: earlier.get(k) == result[k] for k in ("seed", "sizes", "hot_facts", "docs", "distractors")}
        if not all(same.values()) or earlier["traffic"] != result["traffic"]:
            raise SystemExit(f"--before-from {args.before_from}: a different setup ({same}, traffic)")
        before, result["pubmedqa_before"] = earlier["before"], earlier["pubmedqa_before"]
        result["before_from"] = args.before_from
    else:
        before = measure(qa, served, sets, per_fact, bank=facts)
        result["pubmedqa_before"] = pubmedqa(served, prompter, args.pubmedqa, args.seed)
    stage("measured before", clock, result | {"before": before}, args.out)
    report, cost = run_round(settings, work, base, args.in_process)
    result["round1"] = report.to_dict() | cost
    adapter = str(work / "kb" / "adapters" / report.adapter) if report.adapter else ""
    stage(f"round 1: {report.reason}", clock, result | {"before": before}, args.out)
    adapted = make_generator(settings.generation, adapter=adapter) if adapter else served
    # what the product serves: with adapter_scope "closed", prompts holding passages are answered by the base
    # model, so open-book "after" is "before" (same greedy model, same prompts); only closed-book is re-measured
    scoped = settings.generation.adapter_scope == "closed"
    after = measure(qa, adapted, sets, per_fact, open_book=not scoped, bank=facts)
    if adapter or report.adapter:
        result["taught"] = taught(work / "kb" / "adapters" / report.adapter, facts)
        opened = before["open_asked"]["contains"] * before["open_asked"]["n"]
        result["yield"] = result["taught"]["right"] / opened if opened else None
    pm_after = pubmedqa(adapted, Prompter(adapted, settings.prompt, ANSWER_TOKENS), args.pubmedqa, args.seed)
    if scoped:
        after |= {k: v for k, v in before.items() if k.startswith("open_")}
        if pm_after:
            pm_after |= {"open_with_adapter": pm_after["open"], "open": result["pubmedqa_before"]["open"]}
    result |= {"timing_note": "wall times on a shared 2-core machine", "before": before, "after": after,
               "adapter_scope": settings.generation.adapter_scope, "pubmedqa_after": pm_after,
               "recovery": {g: recovery(before, after, g) for g in ("asked", "unseen", "same_doc")}}
    qa.close()
    stage("measured after", clock, result, args.out)
    if adapter and args.routing_n:
        result["routing"] = routing(settings, work / "kb", adapter, hot[: args.routing_n], other[: args.routing_n // 2])
    stage("routing measured", clock, result, args.out)
    if args.round2_docs and report.promoted and not args.one_round:
        result["round2"] = second_round(settings, work / "kb", base, hot, r2_hot, args.in_process)
        stage("round 2 measured", clock)
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    text = table(result)
    Path(args.out).with_suffix(".md").write_text(f"Distillation benchmark (seed {args.seed}, {len(hot)} hot facts; "
                                                 f"`{' '.join(sys.argv)}`)\n\n{text}\n")
    print(text)


def second_round(settings: Settings, kb: Path, base: HFGenerator, r1: list[Fact], r2: list[Fact],
                 in_process: bool) -> dict[str, Any]:
    """New hot facts, a second round; accuracy on round-1 facts (asked phrasings) before and after it."""
    qa = QAPipeline.from_config(traffic_settings(settings), kb=kb, generator=base)
    traffic(qa, r2)
    r1_items, r2_items = items(r1, "asked"), items(r2, "unseen")
    first = HFGenerator(settings.generation, adapter=str(active_adapter(kb)))
    closed = [qa.builder.build_closed_book(q).text for q, _, _ in r1_items]
    closed2 = [qa.builder.build_closed_book(q).text for q, _, _ in r2_items]
    before = score(answer(first, closed), r1_items)
    report, cost = run_round(settings, kb.parent, base, in_process)
    second = HFGenerator(settings.generation, adapter=str(kb / "adapters" / report.adapter))
    after = score(answer(second, closed), r1_items)
    qa.close()
    return {"report": report.to_dict(), **cost, "round1_facts_before": before, "round1_facts_after": after,
            "retention": after["contains"] / before["contains"] if before["contains"] else None,
            "round2_unseen_closed_before": score(answer(first, closed2), r2_items),
            "round2_unseen_closed_after": score(answer(second, closed2), r2_items)}


def run_round(settings: Settings, work: Path, base: HFGenerator, in_process: bool) -> tuple[DistillReport, dict]:
    """One round as users run it, ``rag distill --json`` in its own process, with that process's wall time and peak
    RSS (as the round reports it); ``in_process`` reuses the bench's base model instead."""
    t0 = time.perf_counter()
    if in_process:
        report = DistillRound(settings, generator=base, progress=False).run()
        return report, {"wall_s": round(time.perf_counter() - t0, 1), "process": "bench (in process)",
                        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    config = work / "round-settings.json"
    config.write_text(json.dumps(settings.model_dump(), default=str))
    out = work / "round.json"
    with open(out, "w") as stdout:
        child = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--config", str(config), "distill", "--json"],
                                 stdout=stdout)
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rag distill failed ({status}); see {out}")
    data = json.loads(out.read_text())
    # the child's own VmHWM; ru_maxrss of a child also counts the forked bench process it was before exec
    return DistillReport(**data), {"wall_s": round(time.perf_counter() - t0, 1), "process": "rag distill (child)",
                                   "peak_rss_mb": data["metrics"].get("peak_rss_mb"),
                                   "ru_maxrss_mb": round(usage.ru_maxrss / 1024)}


def active_adapter(kb: Path) -> Path:
    """The adapter round 1 promoted (round 2 compares against it)."""
    from knowledge.distill.adapters import AdapterRegistry

    path = AdapterRegistry(kb).active_path()
    if path is None:
        raise SystemExit("round 1 promoted nothing: no second round")
    return path


def table(r: dict) -> str:
    lines = ["| set | closed before | closed after | open before | open after | n closed / open |",
             "|---|---|---|---|---|---|"]
    for name, n in r["sizes"].items():
        b, a = r["before"], r["after"]
        lines.append(f"| {name} | {b[f'closed_{name}']['contains']:.3f} | {a[f'closed_{name}']['contains']:.3f} | "
                     f"{b[f'open_{name}']['contains']:.3f} | {a[f'open_{name}']['contains']:.3f} | "
                     f"{n} / {b[f'open_{name}']['n']} |")
    gate = r["round1"]["metrics"].get("gate", {})
    if gate.get("general"):
        g = gate["general"]
        lines.append(f"| general (gate) | {g['before']:.3f} | {g['after']:.3f} | - | - | {g['n']} |")
    if gate.get("rag"):
        g = gate["rag"]
        lines.append(f"| cold questions' passages (gate) | - | - | {g['before']:.3f} | {g['after']:.3f} | {g['n']} |")
    if r.get("pubmedqa_before"):
        pb, pa = r["pubmedqa_before"], r["pubmedqa_after"]
        lines.append(f"| pubmedqa | {pb['closed']:.3f} | {pa['closed']:.3f} | {pb['open']:.3f} | {pa['open']:.3f} | "
                     f"{pb['n']} |")
    rec = {k: (round(v, 3) if v is not None else None) for k, v in r["recovery"].items()}
    lines += ["", f"recovery {rec}", f"round 1: promoted={r['round1']['promoted']} ({r['round1']['reason']}), "
              f"{r['round1']['wall_s']} s, peak RSS {r['round1']['peak_rss_mb']} MB; traffic {r['traffic']}"]
    if "routing" in r:
        lines.append(f"routing: {json.dumps(r['routing'])}")
    if "round2" in r:
        r2 = r["round2"]
        lines.append(f"round 2: promoted={r2['report']['promoted']} ({r2['report']['reason']}), {r2['wall_s']} s; "
                     f"round-1 facts {r2['round1_facts_before']['contains']:.3f} -> "
                     f"{r2['round1_facts_after']['contains']:.3f} (retention {r2['retention']})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
