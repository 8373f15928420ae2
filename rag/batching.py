"""Batches bounded by padded size: the one rule the embedder and the generator batch by."""

from __future__ import annotations

from collections.abc import Sequence


def padded_batches(order: Sequence[int], lengths: Sequence[int], tokens: int,
                   size: int | None = None) -> list[list[int]]:
    """``order`` cut into runs whose padded size (items x the longest) stays within ``tokens`` and, with ``size``,
    of at most ``size`` items; an item longer than ``tokens`` runs alone. Runs keep ``order``'s order."""
    out: list[list[int]] = []
    longest = 0
    for i in order:
        fits = out and (size is None or len(out[-1]) < size)
        if fits and (len(out[-1]) + 1) * max(longest, lengths[i]) <= tokens:
            out[-1].append(i)
            longest = max(longest, lengths[i])
        else:
            out.append([i])
            longest = lengths[i]
    return out
