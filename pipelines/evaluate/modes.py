"""One batch of one evaluation mode -> per-query records; and records -> the mode's metrics.

Retrieval modes (sparse/dense/hybrid) rank documents; answer modes (closed/rag/oracle) generate or choose.
A ``+adapter`` suffix runs the answer mode on the pipeline that carries the adapter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from pipelines.evaluate.data import LABELS, EvalQuery
from pipelines.evaluate.metrics import (abstention_scores, beir_doc_id, cited_markers, citation_precision,
                                        contains_answer, doc_run, exact_match, fact_precision, is_abstention,
                                        latency_stats, mean_metrics, mean_of, parse_label, per_query_retrieval,
                                        token_f1)
from rag.grounding.answering import Attempt, Outcome
from rag.config import AnswerConfig
from rag.types import Hit, Passage, content_hash

RETRIEVAL_MODES = ("sparse", "dense", "hybrid")
ANSWER_MODES = ("closed", "rag", "oracle")
LABEL_SUFFIX = "\nAnswer with one word: yes, no or maybe."


class EvalPipeline(Protocol):
    """What evaluation needs from pipelines.qa.QAPipeline."""

    retriever: Any
    generator: Any  # answers prompts that hold passages
    closed_generator: Any  # answers closed-book: the distilled adapter under either adapter_scope
    builder: Any


def base_mode(mode: str) -> str:
    return mode.split("+", 1)[0]


# ---- retrieval ------------------------------------------------------------------------------------------------


def retrieval_batch(pipe: EvalPipeline, queries: Sequence[EvalQuery], mode: str, k_values: Sequence[int]) -> list[dict[str, Any]]:
    """Retrieve for a batch, rank documents (max per doc), score each query with ir_measures."""
    depth = max(k_values)
    start = time.perf_counter()
    # passages, not docs, come back: ask for more so that ``depth`` distinct documents usually remain
    batches = pipe.retriever.retrieve_batch([q.question for q in queries], k=2 * depth, filters=None, mode=mode)
    latency = (time.perf_counter() - start) / max(len(queries), 1)
    records = []
    for query, hits in zip(queries, batches):
        run = doc_run(hits, depth, set(query.relevant))
        scores = per_query_retrieval({query.id: run}, {query.id: query.relevant}, k_values)[query.id]
        records.append({"mode": mode, "id": query.id, "question": query.question, "relevant": query.relevant,
                        "hits": list(run)[:10], "metrics": scores, "latency_s": latency})
    return records


def retrieval_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = mean_metrics({r["id"]: r["metrics"] for r in records})
    return out | latency_stats([r["latency_s"] for r in records])


# ---- answers --------------------------------------------------------------------------------------------------


def _oracle_hits(query: EvalQuery) -> list[Hit]:
    if not query.gold_context:
        return []
    doc = next(iter(query.relevant), query.id)
    passage = Passage(id=content_hash(query.gold_context), text=query.gold_context, doc_id=f"oracle#{doc}",
                      source="oracle")
    return [Hit(passage=passage, score=1.0, rank=1)]


def _hits(pipe: EvalPipeline, queries: Sequence[EvalQuery], mode: str) -> list[list[Hit]]:
    if mode == "closed":
        return [[] for _ in queries]
    if mode == "rag":
        return pipe.retriever.retrieve_batch([q.question for q in queries])
    return [_oracle_hits(q) for q in queries]


def answering_generator(pipe: EvalPipeline, mode: str, question: str = "") -> tuple[Any, str | None]:
    """The generator the product answers ``mode`` with, and its answer when the product checked one already.

    Closed-book prompts go to ``closed_generator`` (the adapter under ``adapter_scope = "closed"``, where
    ``generator`` is the base model), or where the product sends them (``ClosedBook.answer``: the base model
    for a subject the adapter never learnt, or when its answer is not its learnt passage's); prompts with passages
    to ``generator``."""
    if mode != "closed":
        return pipe.generator, None
    if hasattr(pipe, "closed_book"):
        return pipe.closed_book.answer(question)
    return getattr(pipe, "closed_generator", pipe.generator), None


def _answer_one(pipe: EvalPipeline, query: EvalQuery, hits: list[Hit], mode: str, scoring: str) -> dict[str, Any]:
    """One answer the way the product makes it (answer style, support check, abstention), or a label choice."""
    question = query.question + (LABEL_SUFFIX if query.label else "")
    prompt = pipe.builder.build_closed_book(question) if mode == "closed" else pipe.builder.build(question, hits)
    generator, text = answering_generator(pipe, mode, query.question)
    if query.label and scoring == "choice":
        text, scores = generator.choose(prompt.text, list(LABELS))
        return {"prompt": prompt, "answer": text, "choice_scores": scores, "method": "choice", "outcome": None}
    settings = getattr(pipe, "settings", None)
    config = settings.answer if settings is not None else AnswerConfig()
    grounder = None if query.label else getattr(pipe, "grounder", None)  # a yes/no label is not a claim to quote
    attempt = Attempt(config, grounder, generator, prompt, query.question, text=text)
    outcome = attempt.finish("".join(attempt.pieces()))
    return {"prompt": prompt, "answer": outcome.text, "choice_scores": {}, "method": "generate",
            # a closed-book answer the product checked (``text``) was generated before the attempt
            "outcome": outcome, "generated": attempt.generated or text is not None}


def answer_batch(pipe: EvalPipeline, queries: Sequence[EvalQuery], mode: str, scoring: str) -> list[dict[str, Any]]:
    """Closed-book, RAG or oracle answers; each record says whether it was correct and how long *it* took.

    Retrieval runs once for the batch (its time is shared equally); each answer is timed on its own.
    """
    start = time.perf_counter()
    hits = _hits(pipe, queries, base_mode(mode))
    shared = (time.perf_counter() - start) / max(len(queries), 1)
    records = []
    for query, hit_list in zip(queries, hits):
        t0 = time.perf_counter()
        made = _answer_one(pipe, query, hit_list, base_mode(mode), scoring)
        latency = shared + time.perf_counter() - t0
        prompt, answer, outcome = made["prompt"], made["answer"], made["outcome"]
        record = _score_answer(query, answer, prompt.context, outcome)
        records.append(record | {
            "mode": mode, "id": query.id, "question": query.question, "answer": answer,
            "choice_scores": made["choice_scores"], "method": made["method"],
            "hits": [beir_doc_id(h.passage.doc_id) for h in hit_list], "latency_s": latency,
            "prompt_tokens": prompt.n_tokens, "truncated": bool(prompt.truncated),
            "completion_tokens": pipe.generator.count_tokens(answer) if made.get("generated") else 0,
            "answer_tokens": pipe.generator.count_tokens(answer) if answer else 0})
    return records


def _citations(outcome: Outcome | None, answer: str, context: Sequence[Hit]) -> list[dict[str, Any]]:
    """Every citation of the answer with its kind; unchecked (no grounder), the markers the model wrote."""
    if outcome is not None and (outcome.citations or outcome.supported is not None):
        return [{"marker": c.marker, "kind": c.kind, "passage_id": c.passage_id} for c in outcome.citations]
    return [{"marker": m, "kind": "marker", "passage_id": context[m - 1].passage.id}
            for m in cited_markers(answer) if 1 <= m <= len(context)]


def _score_answer(query: EvalQuery, answer: str, context: Sequence[Hit], outcome: Outcome | None) -> dict[str, Any]:
    cites = _citations(outcome, answer, context)
    abstained = bool(outcome.abstained) if outcome is not None and outcome.abstained else is_abstention(answer)
    out: dict[str, Any] = {"gold": query.label or list(query.answers), "abstained": abstained,
                           "unanswerable": query.unanswerable, "citations": cites,
                           "cited": [c["marker"] for c in cites], "citation_precision": None,
                           "supported": outcome.supported if outcome is not None else None,
                           "style": outcome.style if outcome is not None else None}
    texts = {h.passage.id: h.passage.text for h in context}
    if query.answers:  # the fact is in the cited passage
        out["citation_precision"] = fact_precision([texts[c["passage_id"]] for c in cites], query.answers)
    elif query.relevant and cites:  # no gold text: the cited passage is a relevant one
        docs = [h.passage.doc_id for h in context]
        out["citation_precision"] = citation_precision(out["cited"], docs, query.relevant)
    if query.label:
        out["prediction"] = parse_label(answer)
        out["correct"] = out["prediction"] == query.label
    elif query.unanswerable:
        out["correct"] = abstained
    else:
        out["em"], out["f1"] = exact_match(answer, query.answers), token_f1(answer, query.answers)
        out["contains"] = contains_answer(answer, query.answers)
        out["correct"] = bool(out["contains"])
    return out


def answer_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """accuracy, EM/F1/contains, unparsed labels, abstention (and its precision/recall), citation precision,
    supported share and its precision, answer length, latency and tokens/s."""
    out: dict[str, float] = {"accuracy": mean_of(float(r["correct"]) for r in records) or 0.0}
    if any("em" in r for r in records):
        for key in ("em", "f1", "contains"):
            out[key] = mean_of(r.get(key) for r in records) or 0.0
    if any("prediction" in r for r in records):
        out["unparsed"] = float(sum(1 for r in records if "prediction" in r and r["prediction"] is None))
    out["abstention_rate"] = mean_of(float(r["abstained"]) for r in records) or 0.0
    out |= abstention_scores(records)
    precision = mean_of(r.get("citation_precision") for r in records)
    if precision is not None:
        out["citation_precision"] = precision
    out |= _support_metrics(records)
    lengths = [r["answer_tokens"] for r in records if "answer_tokens" in r and "em" in r]
    if lengths:
        out["answer_tokens_p50"] = float(np.median(lengths))
    generated = [r for r in records if r.get("method") == "generate"]
    seconds = sum(r["latency_s"] for r in generated)
    tokens = sum(r["completion_tokens"] for r in generated)
    if tokens and seconds:
        out["tokens_per_s"] = tokens / seconds
    return out | latency_stats([r["latency_s"] for r in records])


def _support_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """How many answers are marked supported, and how many of those really hold a gold answer."""
    checked = [r for r in records if r.get("supported") is not None or r.get("style") is not None]
    if not checked:
        return {}
    supported = [r for r in checked if r.get("supported")]
    out = {"supported_rate": len(supported) / len(checked)}
    # an unanswerable question answered "supported" is a supported answer without the fact in it
    judged = [r for r in supported if "contains" in r or r.get("unanswerable")]
    if judged:
        out["supported_precision"] = sum(r.get("contains", 0.0) for r in judged) / len(judged)
    return out
