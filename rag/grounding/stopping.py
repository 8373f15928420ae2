"""Where a generated answer stops: after ``answer.max_sentences`` complete sentences, or at a sentence that only
repeats an earlier one (small models pad to the token limit that way).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.text import content_words, sentence_spans


def cut_answer(text: str, max_sentences: int, final: bool = False) -> tuple[str, bool]:
    """``text`` up to its last complete sentence worth keeping, and whether generation should stop.

    Generation stops once ``max_sentences`` sentences are complete (0 = no cap) or when a sentence only repeats
    an earlier one (small models pad to the token limit that way: "600 seconds... 60 seconds... 6 seconds").
    The last sentence counts as complete only when another one has started after it, or when ``final``.

    Example:
        >>> cut_answer("It takes 2 hours. It takes 2 hours. It", 0)
        ('It takes 2 hours.', True)
    """
    spans = list(sentence_spans(text))
    kept: list[tuple[int, int]] = []
    for n, (start, end) in enumerate(spans):
        complete = final or n < len(spans) - 1
        sentence = text[start:end]
        if complete and any(_repeats(text[s:e], sentence) for s, e in kept):
            return _join(text, kept), True
        if complete and max_sentences and len(kept) >= max_sentences:
            return _join(text, kept), True
        kept.append((start, end))
    return _join(text, kept), False


def _repeats(earlier: str, later: str) -> bool:
    """True when ``later`` adds no content word to ``earlier`` (or restates it with other numbers only)."""
    words_later = {w for w in content_words(later) if not w.isdigit()}
    words_earlier = {w for w in content_words(earlier) if not w.isdigit()}
    return bool(words_later) and words_later <= words_earlier


def _join(text: str, spans: Sequence[tuple[int, int]]) -> str:
    return text[spans[0][0] : spans[-1][1]] if spans else ""
