"""Post-hoc attribution: cite the passage that supports each answer sentence when the model wrote no markers.

A sentence is attributed to the context passage that contains the largest share of its content words (numbers
normalised, stop words ignored), when that share reaches ``min_support``. This is lexical evidence, so it is
reported as ``kind = "attributed"``, never mixed up with markers the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Citation, Hit

_WORD = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being it its this that these "
    "those as what which who whom whose when where why how do does did has have had not no yes there their they "
    "he she his her we you your our i me my so than then into about over under up down out can could would should "
    "will shall may might must also very more most such only just passage passages answer question knowledge base "
    "according".split()
)


def content_words(text: str) -> set[str]:
    words = (w.lower().replace(",", "") for w in _WORD.findall(text))
    return {w.rstrip(".") for w in words if w not in _STOP and (len(w) > 2 or w.isdigit())}


def attribute(answer_text: str, context: Sequence[Hit], min_support: float = 0.6) -> tuple[Citation, ...]:
    """Citations (unique, in order of first use) for the answer sentences a context passage supports."""
    if not context:
        return ()
    passages = [content_words(h.passage.text + " " + h.passage.title) for h in context]
    cited: dict[int, Citation] = {}
    for sentence in _SENTENCE.split(answer_text.strip()):
        words = content_words(sentence)
        if len(words) < 2:
            continue
        support = [len(words & p) / len(words) for p in passages]
        best = max(range(len(context)), key=lambda i: (support[i], -i))
        if support[best] >= min_support and best + 1 not in cited:
            p = context[best].passage
            cited[best + 1] = Citation(best + 1, p.id, p.source, p.location, context[best].score, "attributed")
    return tuple(cited.values())
