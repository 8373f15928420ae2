"""Evaluation metrics: retrieval via ir_measures, SQuAD EM/F1, yes/no/maybe parsing, abstention, cost.

Example:
    >>> exact_match("The Eiffel Tower!", ["eiffel tower"])
    1.0
    >>> parse_label("  Yes, because ...")
    'yes'
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

import ir_measures
import numpy as np

from rag.grounding.cite import cited_markers
from rag.text import contains
from rag.types import Hit

__all__ = ["cited_markers"]  # re-exported: evaluation reads markers with the product's parser

LABEL_RE = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)
ABSTAIN_RE = re.compile(
    r"(does not contain|doesn['’]t contain|do not contain|cannot answer|can['’]t answer|can not answer|"
    r"unable to answer|not enough information|no information|do not say|does not say)", re.IGNORECASE)


# ---- retrieval ------------------------------------------------------------------------------------------------


def beir_doc_id(passage_doc_id: str) -> str:
    """The BEIR corpus id of an ingested JSONL record: the part after the last ``#``."""
    return passage_doc_id.rsplit("#", 1)[-1]


def hit_key(hit: Hit, relevant: Collection[str] = ()) -> str:
    """The id a hit is judged by: its passage id, full doc id or BEIR doc id, whichever ``relevant`` uses."""
    for key in (hit.passage.id, hit.passage.doc_id):
        if key in relevant:
            return key
    return beir_doc_id(hit.passage.doc_id)


def doc_run(hits: Sequence[Hit], depth: int, relevant: Collection[str] = ()) -> dict[str, float]:
    """Passage hits (best first) -> doc-level scores (max score per doc), the best ``depth`` docs.

    Scores are rank-derived (``1/rank`` of the doc's best passage) so ir_measures ranks exactly like the
    retriever did, whatever the scale of the fused scores.
    """
    best: dict[str, int] = {}
    for position, hit in enumerate(hits, start=1):
        best.setdefault(hit_key(hit, relevant), position)
    ranked = sorted(best.items(), key=lambda kv: kv[1])[:depth]
    return {doc: 1.0 / position for doc, position in ranked}


def retrieval_measures(k_values: Sequence[int]) -> list[object]:
    """nDCG@k, Recall@k and MRR@k (``RR@k``) for each k, plus MAP (``AP``)."""
    measures: list[object] = [ir_measures.AP]
    for k in sorted(set(k_values)):
        measures += [ir_measures.nDCG @ k, ir_measures.R @ k, ir_measures.RR @ k]
    return measures


def measure_key(measure: object) -> str:
    """ir_measures name -> the report key: ``nDCG@10`` -> ``ndcg@10``, ``R@5`` -> ``recall@5``, ``AP`` -> ``map``."""
    name = str(measure)
    base, _, k = name.partition("@")
    key = {"nDCG": "ndcg", "R": "recall", "RR": "mrr", "AP": "map"}[base]
    return f"{key}@{k}" if k else key


def per_query_retrieval(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]],
                        k_values: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per-query metric values from ir_measures; a judged query with no results scores 0 on every measure."""
    measures = retrieval_measures(k_values)
    out: dict[str, dict[str, float]] = {q: {measure_key(m): 0.0 for m in measures} for q in qrels}
    runs = {q: dict(docs) for q, docs in run.items() if docs and q in qrels}
    for metric in ir_measures.iter_calc(measures, {q: dict(r) for q, r in qrels.items()}, runs):
        out[metric.query_id][measure_key(metric.measure)] = float(metric.value)
    return out


def mean_metrics(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Average per-query values over all queries (the judged queries, including empty runs)."""
    if not per_query:
        return {}
    keys = next(iter(per_query.values())).keys()
    return {k: float(np.mean([v[k] for v in per_query.values()])) for k in keys}


# ---- answers --------------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and the articles a/an/the, collapse white space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(pred) & Counter(gold)).values())
    if not pred or not gold:
        return float(pred == gold)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """SQuAD token F1: the best F1 over the gold answers (0.0 when there are none)."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


def parse_label(text: str) -> str | None:
    """The first yes/no/maybe word of the generated text (case-insensitive); None when there is none."""
    match = LABEL_RE.search(text.strip())
    return match.group(1).lower() if match else None


def is_abstention(text: str) -> bool:
    """True when the answer says the context does not contain the answer / it cannot answer."""
    return bool(ABSTAIN_RE.search(text))


def contains_answer(prediction: str, answers: Iterable[str]) -> float:
    """1.0 when a gold answer occurs in the prediction, both normalised (case, punctuation, "1,340" = "1340").

    Example:
        >>> contains_answer("The kiln reaches 1340 °C [1].", ["1,340 °C"])
        1.0
    """
    return float(any(contains(prediction, a) for a in answers))


def fact_precision(cited_texts: Sequence[str], answers: Iterable[str]) -> float | None:
    """Share of cited passages that hold a gold answer (every citation kind counts); None without citations."""
    gold = list(answers)
    if not cited_texts or not gold:
        return None
    return sum(1 for text in cited_texts if any(contains(text, a) for a in gold)) / len(cited_texts)


def abstention_scores(records: Sequence[Mapping[str, object]]) -> dict[str, float]:
    """Precision/recall of abstaining on unanswerable questions, and how often answerable ones abstain.

    Empty when the records hold no unanswerable question (there is nothing to recall).
    """
    unanswerable = [r for r in records if r.get("unanswerable")]
    if not unanswerable:
        return {}
    answerable = [r for r in records if not r.get("unanswerable")]
    abstained = [r for r in records if r.get("abstained")]
    hits = sum(1 for r in unanswerable if r.get("abstained"))
    out = {"abstention_recall": hits / len(unanswerable),
           "abstention_precision": hits / len(abstained) if abstained else 0.0}
    if answerable:
        out["answerable_abstain_rate"] = sum(1 for r in answerable if r.get("abstained")) / len(answerable)
    return out


def citation_precision(markers: Sequence[int], context_docs: Sequence[str], relevant: Iterable[str]) -> float | None:
    """Share of valid cited markers whose context passage is relevant; None when nothing valid was cited.

    ``context_docs[i]`` is the id (doc or passage) behind marker ``i + 1``; a passage counts as relevant when that
    id, or its BEIR doc id, is in ``relevant``.
    """
    gold = set(relevant)
    valid = [m for m in markers if 1 <= m <= len(context_docs)]
    if not valid:
        return None
    good = sum(1 for m in valid if context_docs[m - 1] in gold or beir_doc_id(context_docs[m - 1]) in gold)
    return good / len(valid)


# ---- cost -----------------------------------------------------------------------------------------------------


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of per-query latencies (empty input: no keys)."""
    if not seconds:
        return {}
    arr = np.asarray(seconds, dtype=float)
    return {"latency_p50_s": float(np.percentile(arr, 50)), "latency_p95_s": float(np.percentile(arr, 95)),
            "latency_mean_s": float(arr.mean())}


def mean_of(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
