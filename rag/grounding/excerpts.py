"""The passage structure the sentence scorer reads, and the prompt's context under a token budget.

``units`` cuts a passage into the sentences that are scored and quoted (a short "Defaults to 600." joined to the
one before it); ``items`` says which sentences belong together (a list item or paragraph: "Default: 1000." is about
the option its item starts with); ``excerpts`` keeps the best-scoring sentences of each passage, with their neighbours, under
``prompt.context_tokens`` (the scores are ``rag.grounding.sentences.SentenceScorer``'s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.grounding.sentences import MIN_WORDS
from rag.text import content_words, sentence_spans

# "Defaults to 600." goes on the sentence before it; so does an API doc's unpunctuated "**Default:** `4`" line
_CONTINUES = re.compile(r"^[^#].*[.!?][\"')\]]*$|^\W*defaults?\b", re.S | re.IGNORECASE)


def units(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text``, a short sentence that continues the one before it ("Defaults to 600.") joined
    to it: on its own it names no subject, and quoted alone it answers nothing."""
    out: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        if out and len(content_words(piece)) < MIN_WORDS and _CONTINUES.match(piece):
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out



def items(text: str, spans: Sequence[tuple[int, int]], reach: int = 2) -> list[tuple[int, list[int]]]:
    """For each sentence span of ``text``: the index of the first sentence of its paragraph or list item (no blank
    line between), and of the other sentences within ``reach`` of it there. They say what a short sentence
    ("Default: 1000.") is about."""
    first = [0] * len(spans)
    for i in range(1, len(spans)):
        first[i] = i if "\n\n" in text[spans[i - 1][1] : spans[i][0]] else first[i - 1]
    out = []
    for i in range(len(spans)):
        hi = i
        while hi + 1 < len(spans) and hi - i < reach and first[hi + 1] == first[i]:
            hi += 1
        out.append((first[i], [j for j in range(max(first[i], i - reach), hi + 1) if j not in (i, first[i])]))
    return out


def excerpts(spans: Sequence[tuple[int, int, int]], texts: Sequence[str], scores: Sequence[float],
             count: Callable[[str], int], budget: int) -> dict[int, str]:
    """The text to show of each passage under ``budget`` tokens: its best-scoring sentences, each with the sentence
    before it (its subject) and after it when they fit, in passage order; gaps are marked with " … ".

    Args:
        spans: ``(passage index, start, end)`` of each sentence; ``texts`` each passage's text.
        scores: each sentence's score (``SentenceScorer.scores``); sentences scoring 0 or less are never shown.
        count: tokens of a text; ``budget``: the sentence tokens allowed in all.

    Example:
        >>> excerpts([(0, 0, 10), (0, 11, 20)], ["It is hot. It is 9C."], [0.1, 0.9], lambda t: len(t.split()), 3)
        {0: 'It is 9C.'}
    """
    chosen: set[int] = set()
    used = 0
    for i in sorted(range(len(spans)), key=lambda i: -scores[i]):
        if scores[i] <= 0 or used >= budget:
            break
        for j in (i, i - 1, i + 1):
            if j in chosen or not 0 <= j < len(spans) or spans[j][0] != spans[i][0]:
                continue
            cost = count(texts[spans[j][0]][spans[j][1] : spans[j][2]])
            if used + cost > budget:
                break  # without room for the sentence itself, no neighbour either
            chosen.add(j)
            used += cost
    out: dict[int, list[tuple[int, int]]] = {}
    for j in sorted(chosen):
        p, start, end = spans[j]
        runs = out.setdefault(p, [])
        if runs and j - 1 in chosen and spans[j - 1][0] == p:
            runs[-1] = (runs[-1][0], end)  # consecutive sentences are shown as written, whatever lies between
        else:
            runs.append((start, end))
    return {p: " … ".join(texts[p][s:e] for s, e in runs) for p, runs in out.items()}
