"""Short-answer facts: which spans of an answer carry the fact, whether a passage supports them, and scoring.

A teacher answer like "The Velmora kiln reaches 1,340 °C [1]." carries its fact in the spans that the question does
not already contain: numbers and capitalised names first ("1,340"), else the content words ("maroon"). A fact is
*supported* when every such span occurs in the passage the teacher read; an answer is *correct* for a fact when it
contains every span (normalised: case, punctuation, thousands separators). These rules are what the gate scores
and what the router verifies, so they are strict on purpose: no span, no fact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import GENERIC_NAMES, MONTH_WORDS, STOP, content_words, dates, names, normalise, strip_markers
from rag.text import contains as _contains

_NUMBER = re.compile(r"\d[\d,.]*\d|\d")



def key_spans(answer: str, question: str) -> tuple[str, ...]:
    """Spans of ``answer`` that carry its fact: numbers and names absent from ``question``, else content words.

    Example:
        >>> key_spans("The Velmora kiln reaches 1,340 °C [1].", "What temperature does the Velmora kiln reach?")
        ('1,340',)
    """
    answer = strip_markers(answer)
    spans = [n for n in _NUMBER.findall(answer) if not _contains(question, n)]
    # a date the question gives, restated in the answer in another format ("06/30/1975" -> "30 June"), is no span
    months = MONTH_WORDS if dates(question) else frozenset()
    for name in names(answer):  # not a sentence's capitalised first word ("One of his books ...")
        words = [w for w in name.split() if w not in GENERIC_NAMES and w.lower() not in STOP | months]
        name = " ".join(words)
        if len(name) > 1 and not _contains(question, name) and not any(_contains(s, name) for s in spans):
            spans.append(name)
    if spans:
        return tuple(dict.fromkeys(spans))
    q_words = set(content_words(question))
    return tuple(surface(w, answer) for w in content_words(answer) if w not in q_words)[:3]


def surface(word: str, text: str) -> str:
    """``word`` as ``text`` writes it ("Votordra" at the start of a sentence keeps its capital)."""
    match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)
    return match.group(0) if match else word


_PREAMBLE = re.compile(r"^\s*(?:the answer is:?|(?:the |this )?(?:passage|text|document|knowledge base)s?(?: \[\d+\])? "
                       r"(?:mentions|says|states|notes|explains|tells us)(?: that)?|according to (?:the )?(?:passage|text|"
                       r"document|knowledge base)s?(?: \[\d+\])?,?)\s*", re.IGNORECASE)


def clean_answer(text: str) -> str:
    """The first sentence without markers or "The passage mentions that" (a closed-book answer cites nothing)."""
    text = _PREAMBLE.sub("", first_sentence(text))
    return text[:1].upper() + text[1:]


def supported(spans: Sequence[str], passage: str) -> bool:
    """True when there is at least one span and the passage contains every one of them."""
    return bool(spans) and all(_contains(passage, s) for s in spans)


def is_correct(prediction: str, spans: Sequence[str]) -> bool:
    """True when the prediction contains every key span of the reference (normalised containment)."""
    return bool(spans) and all(_contains(prediction, s) for s in spans)


def first_sentence(text: str) -> str:
    """The first sentence of an answer (the teacher's target stops where its fact is stated)."""
    text = strip_markers(text)
    match = re.search(r"(?<!\d)[.!?](?=\s|$)", text)
    return text[: match.end()].strip() if match else text.strip()


@dataclass(frozen=True)
class Fact:
    """A fact the teacher stated from one passage: the questions that asked it, the answer and its key spans."""

    passage_id: str
    questions: tuple[str, ...]
    answer: str
    spans: tuple[str, ...]
    sentence: str  # the passage sentence that states it ("" when none holds every span)


@dataclass(frozen=True)
class Unlearn:
    """A fact people marked wrong: the answers on ``passage_id`` (or to ``question``) that state ``spans``."""

    question: str
    passage_id: str | None
    spans: tuple[str, ...]

    def covers(self, passage_id: str | None, question: str, answer: str) -> bool:
        """True when ``answer`` (to ``question``, from ``passage_id``) states this wrong fact."""
        same = normalise(question) == normalise(self.question) or (
            self.passage_id is not None and passage_id == self.passage_id)
        return same and is_correct(answer, self.spans)


# Rule-based rephrasings: the bundled 135M model writes poor paraphrases, so variety comes from wrappers that keep
# the user's own wording (the two families never overlap: one trains, the other probes held-out phrasings).
TRAIN_WRAPPERS = ("{q}", "Question: {q}", "Tell me, {l}")
PROBE_WRAPPERS = ("Quick question - {l}", "I'd like to know: {l}")


def rephrase(question: str, wrappers: Sequence[str]) -> list[str]:
    """``question`` inside each wrapper (``{q}`` as asked, ``{l}`` with a lower-cased first letter)."""
    q = question.strip()
    lower = q[:1].lower() + q[1:] if q[:2] != q[:2].upper() else q
    return list(dict.fromkeys(w.format(q=q, l=lower) for w in wrappers))


def sentence_with(spans: Sequence[str], sentences: Sequence[str]) -> str:
    """The first sentence containing every span, or ''."""
    return next((s for s in sentences if supported(spans, s)), "")
