"""Honest citations: each answer sentence is checked against the passage it cites, or the one that supports it.

A ``[n]`` marker the model wrote becomes a ``supported`` citation when passage n supports the sentence
(``rag.grounding.ground``), else ``unsupported``. A sentence without a marker is ``attributed`` to the passage that supports
it best, and only when one does: a wrong answer gets no citation that looks like grounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.grounding.cite import Label, parse_markers, passage_label
from rag.grounding.ground import Evidence, Grounder, Support
from rag.text import content_words, sentence_spans, strip_markers
from rag.types import Citation, Hit


@dataclass(frozen=True)
class Grounded:
    """Citations with their kinds, per-sentence verdicts and the answer's verdict (None: no claim to check)."""

    citations: tuple[Citation, ...]
    verdicts: tuple[Support, ...]
    supported: bool | None


def claims(answer: str) -> list[tuple[str, list[int]]]:
    """The claim sentences of ``answer`` with the markers written in (or right after) each one.

    Example:
        >>> claims("It is 1,340 °C [1]. [2] Built in 1871.")
        [('It is 1,340 °C [1]. [2]', [1, 2]), ('Built in 1871.', [])]
    """
    out: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(answer):
        sentence = answer[start:end]
        if not content_words(strip_markers(sentence)) and out:  # a lone "[2]" belongs to the sentence before it
            out[-1] = (f"{out[-1][0]} {sentence}", out[-1][1] + parse_markers(sentence))
        elif content_words(strip_markers(sentence)):
            out.append((sentence, parse_markers(sentence)))
    return out


def ground_citations(answer: str, evidence: Evidence, grounder: Grounder, label: Label | None = None) -> Grounded:
    """Check every claim of ``answer`` against ``evidence.context``; one citation per (passage, kind), in order."""
    label = label or passage_label
    context = evidence.context
    cited: dict[tuple[int, str], Citation] = {}
    verdicts: list[Support] = []
    for sentence, markers in claims(answer):
        valid = [m for m in dict.fromkeys(markers) if 1 <= m <= len(context)]
        checks = [grounder.check_against(strip_markers(sentence), evidence, m - 1) for m in valid]
        for m, check in zip(valid, checks):
            _add(cited, context, m, "supported" if check.supported else "unsupported", check, label)
        if any(c.supported for c in checks):
            verdicts.append(next(c for c in checks if c.supported))
            continue
        best = grounder.check(strip_markers(sentence), evidence)
        verdict = best[0] if best else Support(sentence, None, 0.0, False)
        if verdict.supported and verdict.passage is not None:
            _add(cited, context, verdict.passage + 1, "attributed", verdict, label)
        verdicts.append(verdict)
    supported = all(v.supported for v in verdicts) if verdicts else None
    return Grounded(tuple(cited.values()), tuple(verdicts), supported)


def _add(cited: dict[tuple[int, str], Citation], context: Sequence[Hit], n: int, kind: str, check: Support,
         label: Label) -> None:
    if (n, kind) in cited or (kind == "attributed" and (n, "supported") in cited):
        return
    p = context[n - 1].passage
    cited[(n, kind)] = Citation(n, p.id, p.source, label(p), context[n - 1].score, kind, check.span)


def quote_citation(hit: Hit, marker: int, span: tuple[int, int], label: Label | None = None) -> Citation:
    """The citation of an extractive answer: the exact quoted span of passage ``marker``."""
    label = label or passage_label
    return Citation(marker, hit.passage.id, hit.passage.source, label(hit.passage), hit.score, "supported", span)
