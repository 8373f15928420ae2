import pytest

from knowledge.config import DistillConfig, LogConfig
from knowledge.distill.select import select_hot, usage_weight
from knowledge.log import EPOCH, PassageUsage, RetrievalLog
from knowledge.store import PassageStore
from rag.types import Answer, Citation, Hit, Passage


def _answer(aid, pids, cited=()):
    hits = tuple(Hit(Passage(p, f"text {p}", "d", "s"), 1.0, i + 1) for i, p in enumerate(pids))
    cites = tuple(Citation(i + 1, p, "s", "d", 1.0) for i, p in enumerate(cited))
    return Answer(id=aid, question=f"question {aid}", text="a", hits=hits, citations=cites)


@pytest.fixture
def log(tmp_path):
    store = PassageStore(tmp_path / "kb.sqlite")
    yield RetrievalLog(store, LogConfig())
    store.close()


def test_cited_hits_weigh_more_and_min_hits_filters(log):
    for i in range(2):
        log.record(_answer(f"a{i}", ["p1", "p2"], cited=["p2"]), ts=EPOCH)
    log.record(_answer("a9", ["p3"]), ts=EPOCH)
    hot = select_hot(log, DistillConfig(min_hits=2, cited_weight=3), now=EPOCH)
    assert [h.passage_id for h in hot] == ["p2", "p1"]
    assert hot[0].weight == pytest.approx(6.0) and hot[1].weight == pytest.approx(2.0)


def test_bad_feedback_lowers_the_selection_weight(log):
    for i in range(3):
        log.record(_answer(f"a{i}", ["p1", "p2"], cited=["p1", "p2"]), ts=EPOCH)
    config = DistillConfig(min_hits=0, cited_weight=1, bad_feedback_weight=0.25)
    before = {h.passage_id: h.weight for h in select_hot(log, config, now=EPOCH)}
    log.store.conn.execute("UPDATE ask_hits SET cited=0 WHERE passage_id='p2'")  # only p1 was cited in a0
    log.feedback("a0", good=False, correction="the right answer", ts=EPOCH)
    after = {h.passage_id: h.weight for h in select_hot(log, config, now=EPOCH)}
    assert before["p1"] == pytest.approx(3.0) and after["p1"] == pytest.approx(0.75)
    assert after["p2"] == pytest.approx(before["p2"])
    assert [h.passage_id for h in select_hot(log, config, now=EPOCH)][0] == "p2"


def test_covered_passages_and_cap_are_respected(log):
    for i in range(3):
        log.record(_answer(f"a{i}", ["p1", "p2", "p3"]), ts=EPOCH)
    hot = select_hot(log, DistillConfig(min_hits=1, max_passages=1), covered={"p1"}, now=EPOCH)
    assert [h.passage_id for h in hot] == ["p2"]


def test_weight_formula_counts_uncited_hits_once():
    usage = PassageUsage("p", hits=4.0, cited=1.0, bad=0.0, total_hits=4, total_cited=1, last_ts=0.0)
    assert usage_weight(usage, DistillConfig(cited_weight=2.0)) == pytest.approx(5.0)
