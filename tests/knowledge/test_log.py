import pytest

from knowledge.config import LogConfig
from knowledge.log import EPOCH, RetrievalLog
from knowledge.store import PassageStore
from rag.types import Answer, Citation, Hit, Passage

DAY = 86400.0


def _answer(aid, question, pids, cited=()):
    hits = tuple(Hit(Passage(p, f"text {p}", "d", "s"), 1.0 / (i + 1), i + 1) for i, p in enumerate(pids))
    cites = tuple(Citation(i + 1, p, "s", "d", 1.0) for i, p in enumerate(cited))
    return Answer(id=aid, question=question, text="a", hits=hits, citations=cites)


@pytest.fixture
def store(tmp_path):
    s = PassageStore(tmp_path / "kb.sqlite")
    yield s
    s.close()


def test_counts_decay_with_the_half_life(store):
    log = RetrievalLog(store, LogConfig(half_life_days=10))
    t = EPOCH + 100 * DAY
    log.record(_answer("a1", "q1", ["p1", "p2"]), ts=t)
    log.record(_answer("a2", "q2", ["p1"]), ts=t)
    now = {u.passage_id: u for u in log.usage(now=t)}
    assert now["p1"].hits == pytest.approx(2.0) and now["p2"].hits == pytest.approx(1.0)
    later = {u.passage_id: u for u in log.usage(now=t + 10 * DAY)}
    assert later["p1"].hits == pytest.approx(1.0) and later["p1"].total_hits == 2


def test_cited_hits_are_counted_separately(store):
    log = RetrievalLog(store, LogConfig())
    log.record(_answer("a1", "q", ["p1", "p2"], cited=["p2"]), ts=EPOCH)
    usage = {u.passage_id: u for u in log.usage(now=EPOCH)}
    assert usage["p2"].cited == pytest.approx(1.0) and usage["p1"].cited == 0


def test_query_text_not_stored_when_disabled(store):
    RetrievalLog(store, LogConfig(store_queries=False)).record(_answer("a1", "secret question", ["p1"]))
    query, qhash = store.conn.execute("SELECT query, query_hash FROM asks").fetchone()
    assert query is None and len(qhash) == 16


def test_bad_feedback_marks_cited_passages_and_correction_is_kept(store):
    log = RetrievalLog(store, LogConfig())
    log.record(_answer("a1", "q", ["p1", "p2"], cited=["p1"]), ts=EPOCH)
    log.feedback("a1", good=False, correction="the right answer", ts=EPOCH)
    usage = {u.passage_id: u for u in log.usage(now=EPOCH)}
    assert usage["p1"].bad == pytest.approx(1.0) and usage["p2"].bad == 0
    assert log.corrections() == [("a1", "q", "the right answer")]
    with pytest.raises(ValueError, match="no logged answer"):
        log.feedback("nope", good=True)


def test_changing_half_life_rebuilds_usage_from_events(store):
    RetrievalLog(store, LogConfig(half_life_days=1)).record(_answer("a1", "q", ["p1"]), ts=EPOCH)
    log = RetrievalLog(store, LogConfig(half_life_days=2))
    assert log.usage(now=EPOCH + 2 * DAY)[0].hits == pytest.approx(0.5)


def test_questions_for_passages(store):
    log = RetrievalLog(store, LogConfig())
    log.record(_answer("a1", "first?", ["p1"]), ts=EPOCH)
    log.record(_answer("a2", "second?", ["p1", "p2"]), ts=EPOCH + 1)
    assert log.questions_for(["p1", "p2"]) == {"p1": ["first?", "second?"], "p2": ["second?"]}


def test_top_questions_are_by_first_ranked_passage_newest_first_without_excluded_ones(store):
    log = RetrievalLog(store, LogConfig())
    log.record(_answer("a1", "old?", ["p1", "p2"]), ts=EPOCH)
    log.record(_answer("a2", "hot?", ["p3", "p1"]), ts=EPOCH + 1)
    log.record(_answer("a3", "new?", ["p1"]), ts=EPOCH + 2)
    log.record(_answer("a4", "other?", ["p2"]), ts=EPOCH + 3)
    assert log.top_questions(exclude={"p3"}) == {"p2": ["other?"], "p1": ["new?", "old?"]}  # p1 at rank 2 not
    assert log.top_questions(exclude={"p3"}, limit=2) == {"p2": ["other?"], "p1": ["new?"]}
    assert log.top_questions(limit=0) == {}
