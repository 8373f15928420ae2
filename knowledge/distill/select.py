"""Which passages to distil: the hot ones by time-decayed retrieval frequency, not yet in the active adapter.

A passage's weight is its decayed hit count, where a cited hit counts ``cited_weight`` instead of 1, multiplied by
``bad_feedback_weight`` once per (decayed) bad answer it took part in: knowledge that produced wrong answers is
the last thing to bake into the weights. Passage ids are content hashes, so an edited passage has a new id and is
selected again even when its old version is covered.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from knowledge.config import DistillConfig
from knowledge.log import PassageUsage, RetrievalLog


@dataclass(frozen=True)
class HotPassage:
    """A selected passage and why: its weight and the decayed counts behind it."""

    passage_id: str
    weight: float
    hits: float
    cited: float
    bad: float


def usage_weight(usage: PassageUsage, config: DistillConfig) -> float:
    """Decayed hits, cited ones counted ``cited_weight`` times, damped by ``bad_feedback_weight ** bad``."""
    cited = min(usage.cited, usage.hits)
    weight = (usage.hits - cited) + config.cited_weight * cited
    return weight * config.bad_feedback_weight ** usage.bad


def select_hot(
    log: RetrievalLog, config: DistillConfig, covered: Collection[str] = (), now: float | None = None,
) -> list[HotPassage]:
    """Passages with weight >= ``min_hits`` that ``covered`` lacks, heaviest first, at most ``max_passages``.

    Example:
        >>> hot = select_hot(log, DistillConfig(min_hits=2), covered=registry.covered())
        >>> [h.passage_id for h in hot][:1]
        ['3f2a...']
    """
    now = time.time() if now is None else now
    covered = set(covered)
    hot = [
        HotPassage(u.passage_id, usage_weight(u, config), u.hits, u.cited, u.bad)
        for u in log.usage(now)
        if u.passage_id not in covered
    ]
    hot = [h for h in hot if h.weight >= config.min_hits and h.weight > 0]
    hot.sort(key=lambda h: (-h.weight, h.passage_id))
    return hot[: config.max_passages]
