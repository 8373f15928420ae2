"""Answer styles: generative, extractive or auto (generate, check, fall back), with abstention and honest citations.

One ``Attempt`` per ask: ``pieces()`` yields the answer text (streamed as generated for ``generative``; the checked
text in one piece for ``auto``, so nobody reads an unsupported sentence that is then replaced), and ``finish()``
turns the text into citations and verdicts.

Example:
    >>> attempt = Attempt(AnswerConfig(), grounder, generator, prompt, "What does the kiln reach?")  # doctest: +SKIP
    >>> text = "".join(attempt.pieces())  # doctest: +SKIP
    >>> attempt.finish(text).supported  # doctest: +SKIP
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rag.grounding.attribute import ground_citations, quote_citation
from rag.grounding.cite import Label, passage_label, resolve_citations
from rag.config import AnswerConfig
from rag.grounding.ground import Evidence, Extract, Grounder
from rag.grounding.stopping import cut_answer
from rag.grounding.kinds import answer_kind, holds_new
from rag.grounding.asks import identifiers, wants_code
from rag.grounding.sentences import answers_type, sibling
from rag.models import BUNDLED_LLMS
from rag.text import STEM, content_words, sentence_spans, split_sentences, strip_markers
from rag.types import Citation, Generator, Hit

_SPACES = re.compile(r"[ \t]{2,}")
_MARKUP = re.compile(r"</?\s*(passage|knowledge_base|section|div|span|p)\b[^>]*>", re.IGNORECASE)
# what a small model calls the prompt's passages when it describes them instead of answering: "The passage ... is
# about ...", "According to the text, ...", "The information provided is a list of ..." ("the text of the treaty" and
# "the context of the war" name something else)
_SOURCE = (r"(?:the|this|these|that|those|each|both|all|our|your)\s+(?:(?:provided|given|above|following|retrieved|"
           r"numbered|first|second|third|last|same|quoted|cited)\s+)?(?:passages?|excerpts?|snippets?|contexts?|texts?|"
           r"knowledge\s+base|information\s+(?:provided|given|above)|(?:provided|given)\s+(?:information|documents?))"
           r"\b(?!\s+of\b)")
_ABOUT_SOURCE = re.compile(rf"^\W*{_SOURCE}|\b(?:according\s+to|based\s+on|as\s+\w+\s+in|in|from|by)\s+{_SOURCE}"
                           r"|\bpassages?\s*\[?\d", re.IGNORECASE)
_SOURCE_FILLER = frozenset("the this these that those each both all our your according to based on as in from by "
                           "provided given above following retrieved numbered first second third last same quoted "
                           "cited".split())  # words of a match that are not the source's name
_ABOUT_QUESTION = re.compile(r"\b(?:the|this|that|your|my)\s+question\b|\bthe\s+answer\s+to\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\W*(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b"
                     r"|^\W*(?:yes|no)\b", re.IGNORECASE)


class PromptLike(Protocol):
    text: str
    context: tuple[Hit, ...]


@dataclass(frozen=True)
class Outcome:
    """What ``finish`` adds to an answer."""

    text: str
    citations: tuple[Citation, ...] = ()
    invalid_markers: tuple[int, ...] = ()
    supported: bool | None = None
    abstained: bool = False
    style: str = "generative"
    grounding: Mapping[str, Any] = field(default_factory=dict)


class Attempt:
    """One answer to one prompt in the configured style.

    Args:
        config: the ``[answer]`` table; ``style`` is overridden by ``style`` when given.
        grounder: support checks over the pipeline's embedder; None skips every check (closed-book answers).
        max_sentences: the sentence cap of generated text (default ``config.max_sentences``; 0 = none, summaries).
        text: an answer already made (e.g. a verified closed-book answer): no generation, only the checks.
        evidence: the prompt context's sentences, when already embedded (context selection does it first).
    """

    def __init__(self, config: AnswerConfig, grounder: Grounder | None, generator: Generator, prompt: PromptLike,
                 question: str, *, style: str | None = None, max_sentences: int | None = None,
                 label: Label | None = None, text: str | None = None, evidence: Evidence | None = None) -> None:
        self.config, self.grounder, self.generator, self.prompt = config, grounder, generator, prompt
        self.question, self.label, self.text = question, label or passage_label, text
        self.style = style or config.style
        self.max_sentences = config.max_sentences if max_sentences is None else max_sentences
        self.evidence = evidence
        self.outcome: Outcome | None = None
        self.grounding: dict[str, Any] = {}
        self.generated = False  # True once the generator ran (its last_stats then belong to this answer)
        if grounder is None or not prompt.context:
            self.style = "generative"

    # ---- text ---------------------------------------------------------------------------------------------------

    def pieces(self) -> Iterator[str]:
        """The answer text: streamed (generative) or decided first and yielded whole (extractive, auto)."""
        if self.style == "generative":
            yield from self._generated()
            return
        outcome = self._decide()
        self.outcome = outcome
        yield outcome.text

    def _generated(self) -> Iterator[str]:
        """Generated text, cut after ``max_sentences`` or a repeated sentence; whole sentences are yielded."""
        if self.text is not None:
            yield self.text
            return
        text, sent = "", 0
        self.generated = True
        for piece in self.generator.stream(self.prompt.text):
            text += piece
            kept, stop = cut_answer(text, self.max_sentences)
            spans = list(sentence_spans(kept))
            # the first sentence streams as it is written (it can neither repeat nor exceed the cap); later ones
            # are held back until complete, so a repeated or surplus sentence is never shown
            whole = kept if stop or len(spans) < 2 else kept[: spans[-1][0]].rstrip()
            if len(whole) > sent:
                yield whole[sent:]
                sent = len(whole)
            if stop:
                break
        final, _ = cut_answer(text, self.max_sentences, final=True)
        if len(final) > sent:
            yield final[sent:]

    def _decide(self) -> Outcome:
        assert self.grounder is not None  # styles other than generative need a grounder (see __init__)
        evidence = self._evidence()
        best = self.grounder.extract(evidence)
        retrieval = self.grounder.retrieval_score(evidence)
        self.grounding |= {"retrieval_score": round(retrieval, 4),
                           "evidence_score": round(best[0].score, 4) if best else 0.0}
        # a paraphrase: the passages hold the question's names but not its wording. Answered by the best sentence, a
        # quote never called supported, and only when it holds a new answer of the kind asked (``kinds.holds_new``:
        # a name for "which writer", a date for "birthday"), else it abstains. Not generated: the small model names
        # a look-alike ("Who from Torteslen got the Silver Beacon Award?" -> a sibling the passages also name). A
        # question that names code identifiers is ``pinned`` by them when the best sentence holds an answer of the
        # kind asked (a default's value, a number, a code name): quoted the same way
        paraphrase = pinned = False
        if self.grounder.weak(evidence):  # the sentence scores are kept: named_only does not score them again
            if self.style != "auto" or not self.config.paraphrases:
                return self._abstain()
            if self.grounder.named_only(evidence):
                paraphrase = self.grounding["named_only"] = True
            elif self.grounder.pinned(evidence):
                paraphrase = pinned = self.grounding["pinned"] = True
            else:
                return self._abstain()
        # a rival within ``tie_margin``: both are quoted, and the quote is not called supported
        rival = self.grounder.rival(evidence, best, self.config.tie_margin)
        if rival is not None:
            self.grounding["tie"] = round(best[0].score - rival.score, 4)
            if rival not in best:
                best = [*best, rival]
        # a quote stating a new value of the kind asked ("Default: 1000" for "the default maxKeys?"), from a passage
        # that covers the question, answers it without the model (``quote_first``): a generated answer stands only
        # with a value the best sentences state (``off_best``), and the 135M model's was right no more often
        quote = self._quote(best, evidence)
        kind = self.grounder.quote_answers_kind(best[0], evidence, quote) if best else None
        shown = bool(best) and answers_type(self.question, quote) and kind is not False
        # a quote about a sibling of the code name asked (``child_process.execFile`` for ``exec()``) is not its answer
        other = sibling(self.question, f"{quote} {_section(best[0], evidence)}") if best else None
        if other:
            self.grounding["sibling"] = other
        stands = self.grounder.covered(evidence) and not other and rival is None  # the quote may be called supported
        checked = self.style == "auto" and not paraphrase
        if checked and shown and self._quotes_first(kind, stands, quote):
            self.grounding["quote_first"] = True
        elif checked:
            text = clean_output("".join(self._generated()))
            grounded = self._ground(text)
            meta = meta_answer(text, self.question)
            if meta:
                self.grounding["meta"] = meta
            stray = self.grounder.out_of_place(text, evidence) if grounded.supported else None
            if stray:
                self.grounding["out_of_place"] = stray
            elif grounded.supported and (off := self.grounder.off_best(text, evidence)):
                stray = self.grounding["off_best"] = off
            if grounded.supported and not meta and not stray and answers_type(self.question, text):
                return grounded
            self.grounding["generated"] = text
        # no passage holds the question's topic words, or the quote holds no answer of the kind asked for (no
        # number for "how many"; for a default, a line that states one, "Default: 2000", not a line with another
        # value): the quote is the closest sentence, not a shown answer
        if paraphrase and not (shown and (pinned or holds_new(self.question, quote))):
            return self._abstain()
        return self._extractive(best, evidence, quote, supported=stands and shown)

    def _quotes_first(self, kind: bool | None, stands: bool, quote: str) -> bool:
        """Whether a shown quote answers without generating (``answer.quote_first``).

        'values': it states a new value of the kind asked (a number, a default, a code name) and its passage covers
        the question. 'all', what 'auto' is for the bundled 135M model: those, and any other quote, but not for a
        yes/no question (the model says yes or no), nor for "who" (a name of two words may be a street: "Who
        founded the workshop?" got "... stands on Quarry Lane", the model named the founder), nor when the
        question asks for a date, number, title, award or place the quote does not hold anew
        (``kinds.holds_new``). On 140 documentation questions the model's checked answers stood 9 times, 2 of them
        wrong, and were right where the quote was not once (bench/docs.py); its refused answers are replaced by the
        same quote anyway. A quote from a passage that does not cover the question is not called supported.
        """
        mode = self.config.quote_first
        if mode == "auto":
            mode = "all" if self.generator.model_id in BUNDLED_LLMS else "values"
        if mode == "off":
            return False
        if kind is True and stands:  # 'values', and 'all' too
            return True
        wanted = answer_kind(self.question)
        return (mode == "all" and kind is not False and not _YES_NO.search(self.question) and wanted != "person"
                and (wanted in (None, "category") or holds_new(self.question, quote)))

    def _quote(self, best: list, evidence: Evidence) -> str:
        """The best sentences as written, in passage order when one passage holds them all; the best after its
        section's heading when that alone names the code name asked for ("response.writeContinue(): Sends an
        HTTP/1.1 100 Continue message to the client ...")."""
        quotes = [e.text for e in best]
        if best and (heading := naming_heading(self.question, best[0], evidence)):
            quotes[0] = f"{heading}: {quotes[0]}"
        if len({e.passage for e in best}) == 1:
            quotes = [q for _, q in sorted(zip((e.start for e in best), quotes))]
        return " ".join(quotes)

    def _extractive(self, best: list, evidence: Evidence, quote: str, supported: bool = True) -> Outcome:
        if not best:
            return self._abstain()
        cites = tuple(quote_citation(evidence.context[e.passage], e.passage + 1, (e.start, e.end), self.label)
                      for e in best)
        style = "fallback" if self.style == "auto" and "quote_first" not in self.grounding else "extractive"
        return Outcome(quote, cites, (), supported, False, style, dict(self.grounding))

    def _abstain(self) -> Outcome:
        return Outcome(self.config.abstain_text, (), (), None, True, self.style, dict(self.grounding))

    # ---- verdicts -----------------------------------------------------------------------------------------------

    def _evidence(self) -> Evidence:
        if self.evidence is None:
            assert self.grounder is not None
            self.evidence = self.grounder.evidence(self.question, self.prompt.context)
        return self.evidence

    def _ground(self, text: str) -> Outcome:
        """Citations with kinds and the answer's verdict for a generated ``text``."""
        _, invalid = resolve_citations(text, self.prompt.context, self.label)
        if self.grounder is None or not self.prompt.context:
            return Outcome(text, (), invalid, None, False, "generative", dict(self.grounding))
        grounded = ground_citations(text, self._evidence(), self.grounder, self.label)
        self.grounding["support"] = [round(v.score, 4) for v in grounded.verdicts]
        return Outcome(text, grounded.citations, invalid, grounded.supported, False, "generative",
                       dict(self.grounding))

    def finish(self, text: str) -> Outcome:
        """The outcome of the text ``pieces()`` yielded (decided already, or checked now)."""
        if self.outcome is not None:
            return self.outcome
        return self._ground(clean_output(text))


def clean_output(text: str) -> str:
    """Drop prompt markup a small model may echo (``<passage id="1">``, ``<section ...>``)."""
    return _SPACES.sub(" ", _MARKUP.sub(" ", text)).strip()


def meta_answer(answer: str, question: str) -> str | None:
    """Why ``answer`` talks about the passages or the question instead of answering it; None for an answer.

    The support check passes "The passage "The Velmora kiln reaches 1,340 °C ..." is about the Kiln.": every number
    and name in it is in the passage. It still answers nothing, so the ``auto`` style quotes the passage instead. A
    word the question itself uses ("What does the passage of the bill require?") is not taken for a source.

    Example:
        >>> meta_answer("According to the text, the kiln reaches 1,340 °C.", "How hot is the kiln?")
        'talks about the passages'
        >>> meta_answer("The kiln reaches 1,340 °C.", "How hot is the kiln?") is None
        True
    """
    asked = _words(question)
    matches = [m.group(0) for sentence in split_sentences(answer) for m in _ABOUT_SOURCE.finditer(sentence)]
    if any(not (_words(m) - _SOURCE_FILLER) & asked for m in matches):
        return "talks about the passages"
    if _ABOUT_QUESTION.search(answer):
        return "talks about the question"
    if _restates(answer, question):
        return "restates the question"
    return None


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", text)}


def _restates(answer: str, question: str) -> bool:
    """True when every content word of ``answer`` is one of the question's (a yes/no question may be restated)."""
    if _YES_NO.search(question) or _YES_NO.search(answer):
        return False
    words = content_words(strip_markers(answer))
    asked = {w[:STEM] for w in content_words(question)}
    return bool(words) and all(w[:STEM] in asked for w in words)


def naming_heading(question: str, extract: Extract, evidence: Evidence) -> str | None:
    """The last heading of the quote's section when the question asks for a code name (which method, event...) that
    the quote does not hold and that heading does: API pages name the method only in the heading ("Sends an
    HTTP/1.1 100 Continue message to the client." under "response.writeContinue()")."""
    asked = set(identifiers(question))
    if not wants_code(question) or set(identifiers(extract.text)) - asked:
        return None
    heading = _section(extract, evidence).rsplit(" > ", 1)[-1].strip()
    return heading if set(identifiers(heading)) - asked else None


def _section(extract: Extract, evidence: Evidence) -> str:
    """The section path of the passage a quoted sentence comes from ("Class: http.Agent > new Agent([options])")."""
    return evidence.context[extract.passage].passage.metadata.get("section") or ""
