import math

import pytest

from knowledge.distill.gate import Probe, compare, decide, score
from rag.config import DistillConfig


def _m(closed, open_=0.0, other=0.0):
    return {"closed": {"delta": closed}, "open": {"delta": open_}, "other": {"delta": other}}


def test_promotes_on_improvement_without_regression():
    ok, reason = decide(_m(0.05, -0.005, 0.0), DistillConfig(min_improvement=0.01, max_regression=0.01))
    assert ok and "+0.0500" in reason


@pytest.mark.parametrize(("metrics", "word"), [
    (_m(0.005), "min_improvement"),
    (_m(-0.2), "min_improvement"),
    (_m(0.2, open_=-0.05), "open regressed"),
    (_m(0.2, other=-0.02), "other regressed"),
    ({"closed": {"delta": None}}, "nothing to measure"),
])
def test_rejects_too_small_gain_or_any_regression(metrics, word):
    ok, reason = decide(metrics, DistillConfig(min_improvement=0.01, max_regression=0.01))
    assert not ok and word in reason


def test_extra_groups_such_as_label_accuracy_gate_too():
    metrics = _m(0.2) | {"label_accuracy": {"delta": -0.1}}
    assert not decide(metrics, DistillConfig(max_regression=0.05))[0]
    assert decide(metrics, DistillConfig(max_regression=0.2))[0]


class _FakeGen:
    """loglikelihood = -len(answer) nats over len(answer.split()) tokens: exactly predictable."""

    def count_tokens(self, text):
        return len(text.split())

    def loglikelihood(self, prompt, continuation):
        return -float(len(continuation)) * (0.5 if "good" in prompt else 1.0)


def test_score_is_mean_per_token_probability_by_group_and_passage():
    probes = [Probe("closed", "good", "ab cd", "p1"), Probe("closed", "x", "ab", "p1"), Probe("other", "x", "a")]
    result = score(_FakeGen(), probes)
    p1 = (math.exp(-5 * 0.5 / 2) + math.exp(-2.0)) / 2
    assert result["groups"]["closed"] == pytest.approx(p1)
    assert result["passages"] == {"p1": pytest.approx(p1)} and result["groups"]["open"] is None
    diff = compare(score(_FakeGen(), probes[1:]), result)
    assert diff["closed"]["delta"] == pytest.approx(p1 - math.exp(-2.0)) and diff["open"]["delta"] is None
