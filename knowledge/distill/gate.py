"""The promotion gate: task accuracy on paired questions, before and after, with an exact McNemar test.

Groups (each item is a rendered prompt and the key spans a correct answer holds, see ``facts.is_correct``):

* ``heldout``  closed-book, phrasings of the distilled facts that were never trained — must *gain*;
* ``open``     the distilled facts asked open-book (the passage in the prompt) — RAG must not get worse
               (asked only when the adapter also reads passages, ``generation.adapter_scope = "all"``; so is
               ``rag``, logged questions about the rest of the KB);
* ``general``  closed-book general knowledge, arithmetic and instructions the model had before — no forgetting;
* ``retained`` closed-book held-out phrasings of earlier rounds' facts — a new round must keep them;
* ``neighbour`` a fact's question asked about a look-alike subject the adapter was not taught (``neighbours``) —
               correct when the answer does *not* state the taught fact: an adapter that lends it is refused;
* ``corrected`` questions a person corrected (``rag feedback --bad --correction``), as asked and wrapped — a round
               that teaches no new fact is promoted when it learnt the corrections (more of them right, none lost).

"Before" is the model users have now (the active adapter, or the base model); "after" is the candidate. A gain
counts only when it is at least ``min_gain`` *and* significant (one-sided exact McNemar p <= ``alpha`` on the
items that changed); a group refuses the candidate when it drops by more than ``max_regression`` and that drop is
significant too. A raw difference on a dozen items decides nothing either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

from knowledge.config import DistillConfig
from knowledge.distill.data import GateItem
from knowledge.distill.facts import is_correct

GAIN_GROUP = "heldout"
CORRECTED = "corrected"
NEIGHBOUR = "neighbour"
REGRESSION_GROUPS = ("open", "rag", "general", "retained", NEIGHBOUR, CORRECTED)
# RAG answers the product gave right must stay right ("the adapter must never make RAG worse"): a net loss there
# beyond ``max_regression`` refuses on the paired count itself, however few the items; the other groups are
# samples of a wider ability, and refuse on a significant fall
STRICT_GROUPS = ("open", "rag")
ANSWER_TOKENS = 32


def answer_all(generator: Any, items: Sequence[GateItem], known: Mapping[str, str] | None = None) -> list[str]:
    """Greedy answers to every item's prompt (short: a fact needs a sentence), each group asked on its own.

    ``known``: answers the same model already gave, by prompt (``AdapterRegistry.answers``: the active adapter's
    own gate, the base model's earlier rounds); only the rest are generated. A group's prompts form the same
    batches whatever else a round asks, so reused general answers are exactly what a fresh run gives; a reused
    held-out answer was given in a batch of other prompts, where left padding can flip a near-tied token (rare).
    """
    known = known or {}
    out = {it.prompt: known[it.prompt] for it in items if it.prompt in known}
    for group in dict.fromkeys(it.group for it in items):
        todo = list(dict.fromkeys(it.prompt for it in items if it.group == group and it.prompt not in out))
        if todo:
            out |= dict(zip(todo, generator.generate_batch(todo, max_new_tokens=ANSWER_TOKENS), strict=True))
    return [out[it.prompt] for it in items]


def grade(items: Sequence[GateItem], answers: Sequence[str]) -> list[bool]:
    """Whether each answer (from ``answer_all``) is correct for its item: it states the item's spans, or for a
    ``neighbour`` (a look-alike subject), it does not."""
    return [is_correct(a, it.spans) != (it.group == NEIGHBOUR) for a, it in zip(answers, items, strict=True)]


def mcnemar_p(wins: int, losses: int) -> float:
    """One-sided exact McNemar p-value that ``wins`` of ``wins + losses`` changed pairs arise by chance (p = 1/2)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(wins, n + 1)) / 2 ** n


@dataclass(frozen=True)
class GroupResult:
    """Paired accuracy of one group: ``gained`` items wrong before and right after, ``lost`` the reverse."""

    n: int
    before: float
    after: float
    gained: int
    lost: int

    @property
    def delta(self) -> float:
        return self.after - self.before

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "before": round(self.before, 4), "after": round(self.after, 4),
                "delta": round(self.delta, 4), "gained": self.gained, "lost": self.lost,
                "p_gain": round(mcnemar_p(self.gained, self.lost), 5),
                "p_loss": round(mcnemar_p(self.lost, self.gained), 5)}


def paired(before: Sequence[bool], after: Sequence[bool]) -> GroupResult:
    n = len(before)
    return GroupResult(n, sum(before) / n if n else 0.0, sum(after) / n if n else 0.0,
                       sum(a and not b for b, a in zip(before, after)), sum(b and not a for b, a in zip(before, after)))


def compare(items: Sequence[GateItem], before: Sequence[bool], after: Sequence[bool]) -> dict[str, GroupResult]:
    """``{group: GroupResult}`` for every group that has items."""
    out = {}
    for group in sorted({it.group for it in items}):
        idx = [i for i, it in enumerate(items) if it.group == group]
        out[group] = paired([before[i] for i in idx], [after[i] for i in idx])
    return out


def decide(results: Mapping[str, GroupResult], config: DistillConfig, rag_served: bool = True,
           guarded: bool = True) -> tuple[bool, str]:
    """``(promote, reason)``: a significant gain of at least ``min_gain``, no net loss of open-book answers beyond
    ``max_regression``, and no significant regression elsewhere.

    ``rag_served=False`` (``generation.adapter_scope = "closed"``): the adapter never reads passages, RAG answers
    stay the base model's, so the open-book groups are diagnostics and do not refuse.

    ``guarded=False`` (``generation.adapter_subjects`` off): the adapter answers every closed-book question, so a
    fact it lends to a look-alike subject reaches users; the ``neighbour`` group then refuses on a net loss beyond
    ``max_regression`` however few its items (a round has a handful: 3 of 3 lost is p = 0.125). Guarded, a question
    about a subject the adapter did not learn goes to the base model, and the group refuses on a significant fall.

    Example:
        >>> decide({"heldout": GroupResult(12, 0.0, 0.75, 9, 0)}, DistillConfig())
        (True, 'held-out closed-book 0.000 -> 0.750 (+9/-0, p=0.00195); open-book kept; no significant regression')
    """
    learnt, summary = _gained(results.get(GAIN_GROUP), config)
    fixed = results.get(CORRECTED)
    if not learnt and fixed is not None and fixed.n:
        # a person stated these facts: learning them is the round's gain (no significance test over a handful)
        said = f"corrections {fixed.before:.3f} -> {fixed.after:.3f} (+{fixed.gained}/-{fixed.lost})"
        if fixed.gained <= fixed.lost or fixed.after < 0.5:
            return False, f"{summary}; {said}: the corrections were not learnt"
        summary = f"{said}; {summary}"
        held = results.get(GAIN_GROUP)
        if held is not None and held.n and -held.delta > config.max_regression and \
                mcnemar_p(held.lost, held.gained) <= config.alpha:
            return False, f"{summary}: facts already learnt were lost"
    elif not learnt:
        return False, summary
    for group in REGRESSION_GROUPS:
        r = results.get(group)
        if r is None or r.n == 0 or (group in STRICT_GROUPS and not rag_served):
            continue
        p_loss = mcnemar_p(r.lost, r.gained)
        # what a person corrected is never given up; nor, unguarded, a look-alike subject's answer
        strict = group in STRICT_GROUPS or group == CORRECTED or (group == NEIGHBOUR and not guarded)
        if -r.delta > config.max_regression and (strict or p_loss <= config.alpha):
            return False, (f"{summary}; but {group} fell {r.before:.3f} -> {r.after:.3f} (-{r.lost}/+{r.gained}, "
                           f"p={p_loss:.3g}) beyond distill.max_regression {config.max_regression}")
    kept = "open-book kept" if rag_served else "RAG answers stay the base model's (adapter_scope closed)"
    return True, f"{summary}; {kept}; no significant regression"


def _gained(gain: GroupResult | None, config: DistillConfig) -> tuple[bool, str]:
    """Whether the held-out group gained at least ``min_gain``, significantly; and the summary that says so."""
    if gain is None or gain.n == 0:
        return False, "no held-out question about the distilled facts: nothing to measure"
    p = mcnemar_p(gain.gained, gain.lost)
    summary = f"held-out closed-book {gain.before:.3f} -> {gain.after:.3f} (+{gain.gained}/-{gain.lost}, p={p:.3g})"
    if gain.delta < config.min_gain:
        return False, f"{summary}: gain below distill.min_gain {config.min_gain}"
    if p > config.alpha:
        return False, f"{summary}: gain not significant at distill.alpha {config.alpha}"
    return True, summary


def confidence(items: Sequence[GateItem], after: Sequence[bool]) -> dict[str, float]:
    """Per distilled passage: the share of its held-out closed-book questions the candidate answers (routing)."""
    per: dict[str, list[bool]] = {}
    for it, ok in zip(items, after, strict=True):
        if it.group == GAIN_GROUP and it.passage_id:
            per.setdefault(it.passage_id, []).append(ok)
    return {pid: round(sum(v) / len(v), 4) for pid, v in per.items()}


def report(results: Mapping[str, GroupResult]) -> dict[str, Any]:
    return {g: r.as_dict() for g, r in results.items()}
