"""One batch of one evaluation mode -> per-query records; and records -> the mode's metrics.

Retrieval modes (sparse/dense/hybrid) rank documents; answer modes (closed/rag/oracle) generate or choose.
A ``+adapter`` suffix runs the answer mode on the pipeline that carries the adapter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pipelines.evaluate.data import LABELS, EvalQuery
from pipelines.evaluate.metrics import (beir_doc_id, cited_markers, citation_precision, doc_run, exact_match,
                                    is_abstention, latency_stats, mean_metrics, mean_of, parse_label,
                                    per_query_retrieval, token_f1)
from rag.types import Hit, Passage, content_hash

RETRIEVAL_MODES = ("sparse", "dense", "hybrid")
ANSWER_MODES = ("closed", "rag", "oracle")
LABEL_SUFFIX = "\nAnswer with one word: yes, no or maybe."


class EvalPipeline(Protocol):
    """What evaluation needs from pipelines.qa.QAPipeline."""

    retriever: Any
    generator: Any
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


def _prompts(pipe: EvalPipeline, queries: Sequence[EvalQuery], mode: str) -> tuple[list[Any], list[list[Hit]]]:
    questions = [q.question + (LABEL_SUFFIX if q.label else "") for q in queries]
    if mode == "closed":
        return [pipe.builder.build_closed_book(q) for q in questions], [[] for _ in queries]
    if mode == "rag":
        hits = pipe.retriever.retrieve_batch([q.question for q in queries])
    else:
        hits = [_oracle_hits(q) for q in queries]
    return [pipe.builder.build(q, h) for q, h in zip(questions, hits)], hits


def _generate(pipe: EvalPipeline, queries: Sequence[EvalQuery], prompts: Sequence[Any],
              scoring: str) -> list[tuple[str, dict[str, float]]]:
    """Labelled queries under ``choice`` scoring pick an option; the others are generated in one batch."""
    out: list[tuple[str, dict[str, float]]] = [("", {})] * len(queries)
    generate = []
    for i, (query, prompt) in enumerate(zip(queries, prompts)):
        if query.label and scoring == "choice":
            out[i] = pipe.generator.choose(prompt.text, list(LABELS))
        else:
            generate.append(i)
    texts = pipe.generator.generate_batch([prompts[i].text for i in generate]) if generate else []
    for i, text in zip(generate, texts):
        out[i] = (text, {})
    return out


def answer_batch(pipe: EvalPipeline, queries: Sequence[EvalQuery], mode: str, scoring: str) -> list[dict[str, Any]]:
    """Closed-book, RAG or oracle answers for a batch; each record says whether the answer was correct."""
    start = time.perf_counter()
    prompts, hits = _prompts(pipe, queries, base_mode(mode))
    answers = _generate(pipe, queries, prompts, scoring)
    per_query = (time.perf_counter() - start) / len(queries)
    records = []
    for query, prompt, hit_list, (answer, scores) in zip(queries, prompts, hits, answers):
        record = _score_answer(query, answer, [h.passage.doc_id for h in prompt.context])
        generated = not scores
        records.append(record | {
            "mode": mode, "id": query.id, "question": query.question, "answer": answer, "choice_scores": scores,
            "method": "generate" if generated else "choice", "hits": [beir_doc_id(h.passage.doc_id) for h in hit_list],
            "latency_s": per_query, "prompt_tokens": prompt.n_tokens, "truncated": bool(prompt.truncated),
            "completion_tokens": pipe.generator.count_tokens(answer) if generated else 0})
    return records


def _score_answer(query: EvalQuery, answer: str, context_docs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"gold": query.label or list(query.answers), "abstained": is_abstention(answer),
                           "citation_precision": None, "cited": cited_markers(answer)}
    if query.relevant and context_docs:
        out["citation_precision"] = citation_precision(out["cited"], context_docs, query.relevant)
    if query.label:
        out["prediction"] = parse_label(answer)
        out["correct"] = out["prediction"] == query.label
    else:
        out["em"], out["f1"] = exact_match(answer, query.answers), token_f1(answer, query.answers)
        out["correct"] = bool(out["em"])
    return out


def answer_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """accuracy or EM/F1, unparsed labels, abstention and citation precision, latency and tokens/s."""
    out: dict[str, float] = {"accuracy": mean_of(float(r["correct"]) for r in records) or 0.0}
    if any("em" in r for r in records):
        out["em"] = mean_of(r.get("em") for r in records) or 0.0
        out["f1"] = mean_of(r.get("f1") for r in records) or 0.0
    if any("prediction" in r for r in records):
        out["unparsed"] = float(sum(1 for r in records if "prediction" in r and r["prediction"] is None))
    out["abstention_rate"] = mean_of(float(r["abstained"]) for r in records) or 0.0
    precision = mean_of(r.get("citation_precision") for r in records)
    if precision is not None:
        out["citation_precision"] = precision
    generated = [r for r in records if r.get("method") == "generate"]
    seconds = sum(r["latency_s"] for r in generated)
    tokens = sum(r["completion_tokens"] for r in generated)
    if tokens and seconds:
        out["tokens_per_s"] = tokens / seconds
    return out | latency_stats([r["latency_s"] for r in records])
