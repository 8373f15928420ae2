import pytest

from knowledge.config import DistillConfig
from knowledge.distill.data import GateItem
from knowledge.distill.gate import GroupResult, answer_all, compare, confidence, decide, grade, mcnemar_p, paired


def test_mcnemar_exact_one_sided_p_values():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_p(4, 0) == pytest.approx(1 / 16)  # four wins out of four are not significant at 0.05
    assert mcnemar_p(9, 1) == pytest.approx(11 / 1024)
    assert mcnemar_p(1, 9) == pytest.approx(1 - 1 / 1024)


def test_paired_counts_gains_and_losses():
    r = paired([True, False, False, True], [True, True, True, False])
    assert (r.n, r.before, r.after, r.gained, r.lost) == (4, 0.5, 0.75, 2, 1)


def _cfg(**kw):
    return DistillConfig(**({"min_gain": 0.2, "max_regression": 0.01, "alpha": 0.05} | kw))


def test_promotes_a_significant_gain_without_significant_regression():
    ok, reason = decide({"heldout": GroupResult(12, 0.0, 0.75, 9, 0),
                         "general": GroupResult(100, 0.8, 0.79, 1, 2)}, _cfg())
    assert ok, reason
    assert "0.000 -> 0.750" in reason and "no significant regression" in reason


@pytest.mark.parametrize(("results", "word"), [
    ({}, "nothing to measure"),
    ({"heldout": GroupResult(4, 0.0, 1.0, 4, 0)}, "not significant"),  # 4/4 on a handful of items proves nothing
    ({"heldout": GroupResult(10, 0.2, 0.5, 5, 2)}, "not significant"),
    ({"heldout": GroupResult(40, 0.0, 0.15, 6, 0)}, "below distill.min_gain"),
    ({"heldout": GroupResult(20, 0.0, 0.8, 16, 0), "general": GroupResult(100, 0.8, 0.6, 2, 22)}, "general fell"),
    ({"heldout": GroupResult(20, 0.0, 0.8, 16, 0), "open": GroupResult(20, 1.0, 0.6, 0, 8)}, "open fell"),
    ({"heldout": GroupResult(20, 0.0, 0.8, 16, 0), "retained": GroupResult(20, 0.9, 0.5, 0, 8)}, "retained fell"),
])
def test_refuses_small_insignificant_gains_and_significant_regressions(results, word):
    ok, reason = decide(results, _cfg())
    assert not ok and word in reason


def test_any_net_loss_of_open_book_answers_refuses_however_few_the_items():
    # the 40-fact benchmark's first round: 3 of 36 open-book answers lost (p = 0.125), general -3.3 points (p = 0.26)
    ok, reason = decide({"heldout": GroupResult(100, 0.0, 0.93, 93, 0), "open": GroupResult(36, 1.0, 0.9167, 0, 3),
                         "general": GroupResult(150, 0.4267, 0.3933, 17, 22)}, _cfg())
    assert not ok and "open fell 1.000 -> 0.917" in reason
    ok, reason = decide({"heldout": GroupResult(100, 0.0, 0.93, 93, 0), "open": GroupResult(36, 0.9, 0.9, 1, 1)},
                        _cfg())
    assert ok, reason  # one lost, one gained: no net loss
    ok, reason = decide({"heldout": GroupResult(100, 0.0, 0.93, 93, 0), "rag": GroupResult(20, 1.0, 0.95, 0, 1)},
                        _cfg())
    assert not ok and "rag fell 1.000 -> 0.950" in reason  # RAG on the rest of the KB: one lost answer refuses


def test_with_adapter_scope_closed_open_book_groups_are_diagnostics_but_general_still_refuses():
    # this session's 40-fact round: open-book 39 -> 34 of 39 with the adapter; it never reads passages in scope closed
    results = {"heldout": GroupResult(106, 0.0, 0.8774, 93, 0), "open": GroupResult(39, 1.0, 0.8718, 0, 5),
               "general": GroupResult(150, 0.4267, 0.4533, 19, 15)}
    assert not decide(results, _cfg())[0]
    ok, reason = decide(results, _cfg(), rag_served=False)
    assert ok and "adapter_scope closed" in reason, reason
    results["general"] = GroupResult(150, 0.45, 0.30, 2, 24)
    ok, reason = decide(results, _cfg(), rag_served=False)
    assert not ok and "general fell" in reason


def test_an_insignificant_wobble_in_a_regression_group_does_not_refuse():
    # two answers of 100 lost, one gained: -1 point, p = 0.5
    ok, reason = decide({"heldout": GroupResult(20, 0.0, 0.8, 16, 0), "general": GroupResult(100, 0.8, 0.79, 1, 2)},
                        _cfg())
    assert ok, reason


class _EchoGen:
    """Answers each prompt with the prompt itself: an item is correct when its prompt holds its spans."""

    def generate_batch(self, prompts, max_new_tokens=0):
        return list(prompts)


def test_grade_compare_and_confidence_per_passage():
    items = [GateItem("heldout", "it is 1,340 degrees", ("1340",), "p1"), GateItem("heldout", "no idea", ("7",), "p1"),
             GateItem("general", "Paris", ("paris",)), GateItem("heldout", "Anna Kestrel", ("Anna Kestrel",), "p2")]
    after = grade(items, answer_all(_EchoGen(), items))
    assert after == [True, False, True, True]
    before = [False, False, True, False]
    results = compare(items, before, after)
    assert results["heldout"].gained == 2 and results["general"].delta == 0
    assert confidence(items, after) == {"p1": 0.5, "p2": 1.0}


class _CountingGen(_EchoGen):
    def __init__(self):
        self.asked = []

    def generate_batch(self, prompts, max_new_tokens=0):
        self.asked.append(list(prompts))
        return list(prompts)


def test_answer_all_reuses_known_answers_and_asks_each_group_on_its_own():
    items = [GateItem("heldout", "h1", ("x",)), GateItem("general", "g1", ("y",)), GateItem("heldout", "h2", ("z",)),
             GateItem("retained", "r1", ("w",))]
    gen = _CountingGen()
    assert answer_all(gen, items, known={"r1": "earlier answer"}) == ["h1", "g1", "h2", "earlier answer"]
    assert gen.asked == [["h1", "h2"], ["g1"]]  # the known one is not asked again; no group shares a batch


def test_a_round_of_corrections_is_promoted_when_they_are_learnt_and_refused_when_not():
    from knowledge.distill.gate import GroupResult, decide

    cfg = DistillConfig()
    same = GroupResult(4, 1.0, 1.0, 0, 0)  # facts the active adapter knew, re-taught: no gain to test
    ok, reason = decide({"heldout": same, "corrected": GroupResult(3, 0.0, 1.0, 3, 0)}, cfg)
    assert ok and reason.startswith("corrections 0.000 -> 1.000"), reason
    ok, reason = decide({"heldout": same, "corrected": GroupResult(3, 0.0, 0.333, 1, 0)}, cfg)
    assert not ok and "not learnt" in reason
    lost = GroupResult(12, 1.0, 0.25, 0, 9)
    ok, reason = decide({"heldout": lost, "corrected": GroupResult(3, 0.0, 1.0, 3, 0)}, cfg)
    assert not ok and "already learnt were lost" in reason
    ok, _ = decide({"heldout": GroupResult(12, 0.0, 0.75, 9, 0), "corrected": GroupResult(3, 1.0, 0.0, 0, 3)}, cfg)
    assert not ok  # new facts do not excuse losing what a person corrected
