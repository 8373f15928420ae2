"""The promotion gate: a candidate adapter replaces the active one (or the base) only when it measurably helps.

Three probe groups, each scored as the mean per-token probability ``exp(loglik / tokens)`` of a reference answer
(a sensitive measure: it moves long before greedy answers change):

* ``closed`` — closed-book prompts about the distilled passages: held-out questions with the teacher's answer, and
  cloze probes (a salient number/name/word of a passage sentence masked; the reference is the filler). Must rise
  by more than ``min_improvement``.
* ``open``   — the same held-out questions with the passage in the prompt (RAG must not get worse).
* ``other``  — cloze probes of passages that were NOT distilled (regression on the rest of the KB).

``open`` and ``other`` may drop by at most ``max_regression``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knowledge.distill.data import Example, Prompter, cloze, sentences
from rag.config import DistillConfig
from rag.types import Passage

GROUPS = ("closed", "open", "other")


@dataclass(frozen=True)
class Probe:
    group: str
    prompt: str
    answer: str
    passage_id: str | None = None


def cloze_probes(prompter: Prompter, passages: Sequence[Passage], group: str, per_passage: int = 3,
                 in_context: bool = False) -> list[Probe]:
    """Cloze probes (choice 0: never the token masked in training) of up to ``per_passage`` sentences each."""
    out = []
    for p in passages:
        for sentence in sentences(p.text)[:per_passage]:
            item = cloze(sentence, choice=0)
            if item:
                ask = f"Fill in the blank: {item.masked}"
                prompt = prompter.open(ask, [p]) if in_context else prompter.closed(ask)
                out.append(Probe(group, prompt, item.answer, p.id))
    return out


def build_probes(prompter: Prompter, distilled: Sequence[Passage], held_out: Sequence[Example],
                 others: Sequence[Passage]) -> list[Probe]:
    """Probes of the three groups from the round's passages, its held-out examples and some other passages."""
    by_id = {p.id: p for p in distilled}
    probes = [Probe("closed", e.prompt, e.answer, e.passage_id) for e in held_out]
    probes += cloze_probes(prompter, distilled, "closed")
    probes += [Probe("open", prompter.open(e.question, [by_id[e.passage_id]]), e.answer, e.passage_id)
               for e in held_out if e.passage_id in by_id]
    probes += cloze_probes(prompter, distilled, "open", in_context=True)
    return probes + cloze_probes(prompter, others, "other", per_passage=2)


def token_probability(generator: Any, probe: Probe) -> float:
    """Mean per-token probability of the probe's answer after its prompt (geometric mean, in [0, 1])."""
    n = max(1, generator.count_tokens(probe.answer))
    return math.exp(generator.loglikelihood(probe.prompt, probe.answer) / n)


def score(generator: Any, probes: Sequence[Probe]) -> dict[str, Any]:
    """Mean score per group, and per distilled passage for the ``closed`` group (the adapter's confidence)."""
    values = [(p, token_probability(generator, p)) for p in probes]
    groups = {g: [v for p, v in values if p.group == g] for g in GROUPS}
    per_passage: dict[str, list[float]] = {}
    for p, v in values:
        if p.group == "closed" and p.passage_id:
            per_passage.setdefault(p.passage_id, []).append(v)
    return {"groups": {g: (sum(v) / len(v) if v else None) for g, v in groups.items()},
            "counts": {g: len(v) for g, v in groups.items()},
            "passages": {pid: sum(v) / len(v) for pid, v in per_passage.items()}}


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """``{group: {before, after, delta}}`` from two ``score`` results (delta ``None`` when a group is empty)."""
    out = {}
    for g in GROUPS:
        b, a = before["groups"][g], after["groups"][g]
        out[g] = {"before": b, "after": a, "delta": None if a is None or b is None else a - b}
    return out


def decide(metrics: Mapping[str, Mapping[str, float | None]], config: DistillConfig) -> tuple[bool, str]:
    """Promote only when ``closed`` rises by more than ``min_improvement`` and ``open``/``other`` drop by at most
    ``max_regression``; returns ``(promote, reason)``. Extra groups (e.g. label accuracy) count as regressions too.

    Example:
        >>> decide({"closed": {"delta": 0.1}, "open": {"delta": 0.0}, "other": {"delta": -0.001}}, DistillConfig())
        (True, 'closed-book +0.1000 > 0.0; no regression beyond 0.01')
    """
    gain = (metrics.get("closed") or {}).get("delta")
    if gain is None:
        return False, "no closed-book probe about the distilled passages: nothing to measure"
    if gain <= config.min_improvement:
        return False, f"closed-book {gain:+.4f} does not exceed min_improvement {config.min_improvement}"
    for group, m in metrics.items():
        delta = m.get("delta")
        if group != "closed" and delta is not None and -delta > config.max_regression:
            return False, f"{group} regressed by {-delta:.4f} > max_regression {config.max_regression}"
    return True, f"closed-book {gain:+.4f} > {config.min_improvement}; no regression beyond {config.max_regression}"
