"""Evaluation metrics on tiny hand-checkable examples."""

from __future__ import annotations

import math

import pytest

from pipelines.evaluate.metrics import (citation_precision, doc_run, exact_match, is_abstention, latency_stats,
                                    mean_metrics, normalize_answer, parse_label, per_query_retrieval, token_f1)
from rag.types import Hit, Passage


def _hit(doc: str, rank: int, pid: str | None = None) -> Hit:
    passage = Passage(id=pid or f"p-{doc}-{rank}", text="t", doc_id=f"/data/corpus.jsonl#{doc}", source="s")
    return Hit(passage=passage, score=1.0 / rank, rank=rank)


def test_ir_measures_values_match_hand_computation() -> None:
    qrels = {"q1": {"d1": 1, "d2": 1}}
    run = {"q1": {"d3": 1.0, "d1": 0.5, "d2": 0.25}}
    m = per_query_retrieval(run, qrels, [1, 3])["q1"]
    assert m["mrr@3"] == pytest.approx(0.5)
    assert m["recall@1"] == 0.0 and m["recall@3"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert m["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_judged_query_without_results_counts_as_zero() -> None:
    per_query = per_query_retrieval({"q1": {"d1": 1.0}}, {"q1": {"d1": 1}, "q2": {"d2": 1}}, [10])
    assert per_query["q2"]["ndcg@10"] == 0.0
    assert mean_metrics(per_query)["ndcg@10"] == pytest.approx(0.5)


def test_doc_run_maps_passages_to_docs_keeping_the_best() -> None:
    hits = [_hit("d2", 1), _hit("d1", 2), _hit("d2", 3), _hit("d3", 4)]
    run = doc_run(hits, depth=2)
    assert list(run) == ["d2", "d1"]
    assert run["d2"] > run["d1"]


def test_doc_run_judges_by_passage_id_when_relevant_uses_passage_ids() -> None:
    run = doc_run([_hit("d1", 1, pid="abc")], depth=5, relevant={"abc"})
    assert list(run) == ["abc"]


def test_squad_normalisation_em_and_f1() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert exact_match("the cat", ["A cat.", "dog"]) == 1.0
    assert exact_match("cat sat", ["cat"]) == 0.0
    assert token_f1("The cat sat", ["cat sat on mat"]) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert token_f1("dog", ["cat"]) == 0.0
    assert token_f1("anything", []) == 0.0


@pytest.mark.parametrize(("text", "label"), [
    ("  YES.", "yes"), ("Maybe not", "maybe"), ("I think no, because", "no"), ("Nothing is known", None),
    ("The answer is: Yes", "yes"), ("", None), ("yesterday", None),
])
def test_parse_label_takes_first_label_word(text: str, label: str | None) -> None:
    assert parse_label(text) == label


def test_abstention_and_citation_precision() -> None:
    assert is_abstention("The knowledge base does not contain the answer.")
    assert is_abstention("I cannot answer that.")
    assert not is_abstention("It is 1300 degrees [1].")
    docs = ["/c.jsonl#d1", "/c.jsonl#d9"]
    assert citation_precision([1, 2], docs, {"d1"}) == 0.5
    assert citation_precision([1, 7], docs, {"d1"}) == 1.0  # out-of-range markers are not counted
    assert citation_precision([], docs, {"d1"}) is None


def test_latency_percentiles() -> None:
    stats = latency_stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["latency_p50_s"] == 3.0
    assert 4.0 < stats["latency_p95_s"] < 100.0
    assert latency_stats([]) == {}


def test_contains_answer_is_normalised_and_cited_facts_are_counted_over_all_kinds() -> None:
    from pipelines.evaluate.metrics import contains_answer, fact_precision

    assert contains_answer("The kiln reaches 1340 °C [1].", ["1,340 °C"]) == 1.0
    assert contains_answer("The kiln reaches 13400 °C.", ["1,340"]) == 0.0
    assert fact_precision(["It reaches 1,340 °C.", "The ferry sails daily."], ["1340"]) == 0.5
    assert fact_precision([], ["1340"]) is None


def test_abstention_scores_need_unanswerable_questions() -> None:
    from pipelines.evaluate.metrics import abstention_scores

    records = [{"unanswerable": True, "abstained": True}, {"unanswerable": True, "abstained": False},
               {"unanswerable": False, "abstained": True}, {"unanswerable": False, "abstained": False}]
    assert abstention_scores(records) == {"abstention_recall": 0.5, "abstention_precision": 0.5,
                                          "answerable_abstain_rate": 0.5}
    assert abstention_scores(records[2:]) == {}


def test_eval_reads_markers_with_the_products_parser() -> None:
    from pipelines.evaluate import metrics
    from rag.grounding import cite

    assert metrics.cited_markers is cite.cited_markers
    assert metrics.cited_markers("A [1-3]. B [2, 5].") == [1, 2, 3, 5]
