"""Grounding: is each answer sentence supported by a passage, which passage sentence answers the question, abstain?

A sentence is *supported* by a passage when every number and name in it occurs in the passage (a claim must not
invent them), so does every topic word of the question it repeats, and the mean of two scores reaches
``AnswerConfig.min_support``: the share of its content words found in the passage or the question, and its best
embedding cosine with a sentence of the passage. The extractive answer is the passage sentence that best answers the
question (similarity, question-word overlap, a number when the question asks for one). The answer abstains when
retrieval is weak and no sentence answers well, or when no passage holds the question's topic words and no passage
is close to the question (``Grounder.weak``).

Example:
    >>> grounder = Grounder(AnswerConfig(), embedder)  # doctest: +SKIP
    >>> evidence = grounder.evidence("What temperature does the kiln reach?", hits)  # doctest: +SKIP
    >>> grounder.check("The kiln reaches 900 °C.", evidence)[0].supported  # doctest: +SKIP
    False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.config import AnswerConfig
from rag.grounding.asks import code_identifiers, identifiers, topic_words, wants_code, wants_default, wants_number
from rag.grounding.excerpts import items, units
from rag.grounding.sentences import SentenceScorer, answers_kind, literals, names_term, states_default_line
from rag.text import (STEM, content_words, contains, dates, held_date, names, normalise, numbers, split_sentences,
                      strip_markers, without_dates)
from rag.types import Embedder, Hit

# how people ask, not what about: "Do you know ...", "Any idea ...", "I'm looking for ...", "the full name of ..."
_PHRASING = frozenset("know idea tell looking something exactly name full one any mention wondering".split())


@dataclass(frozen=True)
class Support:
    """The verdict on one answer sentence: its best passage (index into the context) and why."""

    sentence: str
    passage: int | None
    score: float
    supported: bool
    missing: tuple[str, ...] = ()
    span: tuple[int, int] | None = None  # the passage sentence most like the answer sentence


@dataclass(frozen=True)
class Extract:
    """A passage sentence quoted verbatim: ``text == context[passage].passage.text[start:end]``."""

    text: str
    passage: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Evidence:
    """The context cut into sentences and embedded once per ask; shared by ``check`` and ``extract``."""

    question: str
    context: tuple[Hit, ...]
    spans: tuple[tuple[int, int, int], ...]  # (passage index, start, end) of each passage sentence
    vectors: np.ndarray  # one row per span, L2-normalised
    question_vector: np.ndarray

    def sentence(self, i: int) -> str:
        p, start, end = self.spans[i]
        return self.context[p].passage.text[start:end]

    def within(self, context: Sequence[Hit]) -> Evidence:
        """This evidence for the passages of ``context`` only (those of its own that a prompt kept), re-indexed."""
        position = {hit.passage.id: n for n, hit in enumerate(context)}
        rows = [i for i, (p, _, _) in enumerate(self.spans) if self.context[p].passage.id in position]
        spans = tuple((position[self.context[self.spans[i][0]].passage.id], *self.spans[i][1:]) for i in rows)
        return Evidence(self.question, tuple(context), spans, self.vectors[rows], self.question_vector)


class Grounder:
    """Support checks, extractive answers and the abstention rule over one embedder."""

    def __init__(self, config: AnswerConfig, embedder: Embedder,
                 idf: Callable[[str], float | None] | None = None, known: Callable[[str], bool] | None = None) -> None:
        """``idf``: the corpus IDF of a word (None: not a topic word); coverage then weighs rare words more.
        ``known``: whether some passage of the knowledge base holds a word (``named_only`` needs it)."""
        self.config = config
        self.embedder = embedder
        self.idf, self.known = idf, known
        self.scorer = SentenceScorer(idf)
        # the last evidence scored, its scores and list items: an ask scores and checks the same evidence 2-3 times
        self._scored: tuple[Evidence, list[float], list[tuple[int, list[int]]]] | None = None

    def evidence(self, question: str, context: Sequence[Hit]) -> Evidence:
        """Split every context passage into sentences and embed them together with the question."""
        spans = [(i, s, e) for i, hit in enumerate(context) for s, e in units(hit.passage.text)]
        texts = [context[i].passage.text[s:e] for i, s, e in spans]
        vectors = self.embedder.embed([question, *texts]) if texts else self.embedder.embed([question])
        return Evidence(question, tuple(context), tuple(spans), vectors[1:], vectors[0])

    # ---- support ------------------------------------------------------------------------------------------------

    def check(self, answer: str, evidence: Evidence) -> list[Support]:
        """One verdict per claim sentence of ``answer`` (sentences without content words are not claims)."""
        sentences = [s for s in split_sentences(strip_markers(answer)) if content_words(s)]
        if not sentences or not evidence.context:
            return [Support(s, None, 0.0, False) for s in sentences]
        vectors = self.embedder.embed(sentences)
        return [self._best(s, v, evidence) for s, v in zip(sentences, vectors)]

    def support(self, sentence: str, vector: np.ndarray, evidence: Evidence, passage: int) -> Support:
        """The verdict on ``sentence`` against one passage (used for the passage a ``[n]`` marker names)."""
        haystack = _haystack(evidence.context[passage])
        missing = tuple(x for x in [*numbers(sentence), *names(sentence)] if not contains(haystack, x))
        words = content_words(sentence)
        passage_words = set(content_words(haystack))
        # a topic word of the question that the passage lacks is a claim the passage does not make ("does not have
        # a café"), even though the question supplied the word
        held = {w[:STEM] for w in passage_words}
        asked = {w[:STEM] for w in topic_words(evidence.question)}
        missing += tuple(w for w in words if w[:STEM] in asked and w[:STEM] not in held)
        known = passage_words | set(content_words(evidence.question))
        coverage = sum(w in known for w in words) / len(words) if words else 0.0
        rows = [i for i, (p, _, _) in enumerate(evidence.spans) if p == passage]
        sims = evidence.vectors[rows] @ vector if rows else np.zeros(0)
        best = rows[int(np.argmax(sims))] if rows else None
        similarity = float(np.max(sims)) if rows else 0.0
        score = (coverage + max(similarity, 0.0)) / 2
        span = evidence.spans[best][1:] if best is not None else None
        return Support(sentence, passage, score, not missing and score >= self.config.min_support, missing, span)

    def check_against(self, sentence: str, evidence: Evidence, passage: int) -> Support:
        """``support`` for a sentence not embedded yet."""
        return self.support(sentence, self.embedder.embed([sentence])[0], evidence, passage)

    def _best(self, sentence: str, vector: np.ndarray, evidence: Evidence) -> Support:
        verdicts = [self.support(sentence, vector, evidence, i) for i in range(len(evidence.context))]
        return max(verdicts, key=lambda v: (v.supported, not v.missing, v.score))

    # ---- extractive answers -------------------------------------------------------------------------------------

    def extract(self, evidence: Evidence) -> list[Extract]:
        """The ``extract_sentences`` best answering passage sentences, best first (none without context)."""
        if not evidence.spans:
            return []
        scores = self.scores(evidence)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.config.extract_sentences]
        return [Extract(evidence.sentence(i), evidence.spans[i][0], evidence.spans[i][1], evidence.spans[i][2],
                        scores[i]) for i in order]

    def rival(self, evidence: Evidence, best: Sequence[Extract], margin: float) -> Extract | None:
        """The best-scored sentence worded otherwise than ``best[0]`` when it scores within ``margin`` of it: the
        scorer cannot tell which of the two answers ("The returned object includes the username, uid, gid, shell,
        and homedir." 0.892, "On Windows, the uid and gid fields are -1, and shell is null." 0.891). None without
        one, or with ``margin`` 0. A sentence repeated word for word in another passage is no rival."""
        if not best or not margin:
            return None
        scores = self.scores(evidence)
        own = normalise(best[0].text)
        for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
            if normalise(evidence.sentence(i)) == own:
                continue
            if scores[i] < best[0].score - margin:
                return None
            p, start, end = evidence.spans[i]
            return Extract(evidence.sentence(i), p, start, end, scores[i])
        return None

    def scores(self, evidence: Evidence) -> list[float]:
        """How well each passage sentence answers the question (``rag.grounding.sentences``), one per span."""
        return list(self._scored_items(evidence)[1])

    def _scored_items(self, evidence: Evidence) -> tuple[Evidence, list[float], list[tuple[int, list[int]]]]:
        last = self._scored
        if last is not None and last[0] is evidence:
            return last
        around = self._items(evidence)
        hits = [evidence.context[p] for p, _, _ in evidence.spans]
        haystacks = [_haystack(h) for h in evidence.context]
        scores = self.scorer.scores(
            evidence.question, [evidence.sentence(i) for i in range(len(evidence.spans))],
            [_heading(h) for h in hits],
            [h.passage.source for h in hits], evidence.vectors @ evidence.question_vector, around,
            [haystacks[p] for p, _, _ in evidence.spans])
        self._scored = (evidence, scores, around)
        return self._scored

    @staticmethod
    def _items(evidence: Evidence) -> list[tuple[int, list[int]]]:
        """Each span's list item or paragraph (``rag.grounding.excerpts.items``), as span indices."""
        out: list[tuple[int, list[int]]] = []
        for p, hit in enumerate(evidence.context):  # spans run passage by passage
            offset = len(out)
            found = items(hit.passage.text, [(s, e) for q, s, e in evidence.spans if q == p])
            out += [(first + offset, [j + offset for j in near]) for first, near in found]
        return out

    # ---- abstention ---------------------------------------------------------------------------------------------

    def retrieval_score(self, evidence: Evidence) -> float:
        """The best dense cosine of the context; without dense scores, the best question-sentence cosine."""
        dense = [h.scores["dense"] for h in evidence.context if "dense" in h.scores]
        if dense:
            return float(max(dense))
        return float(np.max(evidence.vectors @ evidence.question_vector)) if evidence.spans else 0.0

    def coverage(self, evidence: Evidence) -> float:
        """The largest share of the question's topic words that one passage holds (1.0 for a question without).

        A question about a person's birth year, put to a passage that names the person but not the birth, misses
        "born": the passage is about the topic but does not say the answer. A date is held in any format
        ("06/30/1975" by "30 June 1975"); words of asking ("Do you know ...", "the full name of") are no topic.
        """
        question, asked_dates = without_dates(evidence.question)
        weights: dict[str, float] = {}
        for w in topic_words(question):
            weight = self._weight(w)
            if weight and w not in _PHRASING:
                weights[w[:STEM]] = max(weights.get(w[:STEM], 0.0), weight)
        # a date weighs as its rarest word, the year usually
        date_weights = [max((self._weight(w) for w in content_words(written)), default=0.0) or 1.0
                        for written, _ in asked_dates]
        total = sum(weights.values()) + sum(date_weights)
        if not total:
            return 1.0
        best = 0.0
        for hit in evidence.context:
            text = _haystack(hit)
            words = {w[:STEM] for w in content_words(text)}
            held = dates(text) if asked_dates else []
            share = sum(v for k, v in weights.items() if k in words)
            share += sum(v for (_, d), v in zip(asked_dates, date_weights) if held_date(d, held))
            best = max(best, share / total)
        return best

    def _weight(self, word: str) -> float:
        """A topic word's weight: its corpus IDF (0 for a word the index does not keep, like "3"), else 1."""
        return 1.0 if self.idf is None else self.idf(word) or 0.0

    def out_of_place(self, answer: str, evidence: Evidence) -> str | None:
        """The first new span of ``answer`` (a number, code identifier or name the question does not hold) that no
        passage sentence states about what the question asks; None when every one is stated in place.

        "The default `keepAliveMsecs` of an http.Agent is 5 seconds." passes the support check: every word and the
        5 are in a passage. But the 5 is in a sentence about another setting. A new span counts as in place when a
        sentence holding it (with its list item's first sentence, its neighbours, title and section as context)
        names every identifier the question names and at least half of its topic words.
        """
        text = strip_markers(answer)
        spans = [n for n in numbers(text) if not contains(evidence.question, n)]
        spans += [t for t in [*identifiers(text), *names(text)] if not contains(evidence.question, t)]
        if not spans or not evidence.spans:
            return None
        terms = identifiers(evidence.question)
        topic = {w[:STEM] for w in topic_words(evidence.question)}
        places = []
        for i, (first, near) in enumerate(self._scored_items(evidence)[2]):
            hit = evidence.context[evidence.spans[i][0]]
            around = " ".join([evidence.sentence(first), *(evidence.sentence(j) for j in near), _heading(hit)])
            held = {w[:STEM] for w in content_words(f"{evidence.sentence(i)} {around}")}
            if all(names_term(f"{evidence.sentence(i)} {around}", t) for t in terms) and (
                    not topic or len(topic & held) >= len(topic) / 2):
                places.append(evidence.sentence(i))
        return next((x for x in spans if not any(contains(p, x) for p in places)), None)

    def off_best(self, answer: str, evidence: Evidence) -> str | None:
        """For a question that wants a code name, a number or a default: the first new one ``answer`` states that none
        of the ``agree_top`` best-scored sentences holds (each with its list item; for a default, those that state a
        default); None when all do, or for other questions.

        "Which ChildProcess event is emitted once the child process has spawned successfully?" got "The 'error'
        event is emitted once ..." from a 135M model, supported and in place (the 'error' event's own sentence is
        about a ChildProcess too), while the sentence that answers, ranked first, names 'spawn'. Answer-sentence
        agreement, as extractive readers answer from the best-ranked sentences."""
        question = evidence.question
        default = wants_default(question)
        if not self.config.agree_top or not evidence.spans or not (default or wants_code(question)
                                                                   or wants_number(question)):
            return None
        text = strip_markers(answer)
        spans = [x for x in [*numbers(text), *identifiers(text), *(literals(text) if default else [])]
                 if not contains(question, x)]
        if not spans:
            return None
        _, scores, around = self._scored_items(evidence)
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.config.agree_top]
        # a default's value is the one a line states as the default ("* {number} **Default:** `200`"), not any
        # value near it ("response.statusCode = 404;" in the same section)
        top = [i for i in top if not default or states_default_line(evidence.sentence(i),
                                                                      evidence.sentence(around[i][0]))]
        held = " ".join(evidence.sentence(j) for i in top for j in {i, around[i][0], *around[i][1]})
        return next((x for x in spans if not contains(held, x)), None)

    def covered(self, evidence: Evidence) -> bool:
        """True when one passage holds ``min_coverage`` of the question's topic words (a quote can answer it)."""
        return not self.config.abstain or self.coverage(evidence) >= self.config.min_coverage

    def weak(self, evidence: Evidence) -> bool:
        """True when the passages do not hold the answer: retrieval is weak and no passage sentence answers the
        question well, or no passage holds enough of the question's topic words (``min_coverage``) and none is
        close to the question (``close_retrieval``).

        A research question worded unlike its abstract ("Do mossy fibers release GABA?") misses topic words, yet its
        abstract is far closer to it than a passage that merely shares the topic is to a question it does not answer.
        When it gets no supported generated answer, its quote is not called supported: no passage holds its topic
        (``covered``).
        """
        return self.weakness(evidence) is not None

    def named_only(self, evidence: Evidence) -> bool:
        """True when the passages are ``weak`` only for the question's wording: no passage holds enough of its topic
        words, but one holds every name, quoted term, number and date the question names its subject by.

        A paraphrase ("How did Nendan Mirdrabra's dad earn a living?" of a page that says "Her father was a
        carpenter") misses "dad", "earn" and "living", words the knowledge base may not hold at all, so they weigh
        most. Such a question is answered by its best sentence, a quote never called supported, when that holds a
        new answer of the kind asked (``rag.grounding.answering``).
        """
        return self.weakness(evidence) == "coverage" and self.named(evidence)

    def pinned(self, evidence: Evidence) -> bool:
        """True when the passages are ``weak`` only for the question's wording, but the question names code
        identifiers (those in backticks, if any) that the best sentence's passage (title, section and text) holds
        each of, and that sentence, with its list item's first sentence, holds an answer of the kind asked
        (``answers_kind``: a default's value, a number, a code name).

        Documentation questions are worded as people ask them ("How many levels deep does `console.dir()` go when I
        don't pass a depth?" of "`depth` {number} Tells util.inspect() how many times to recurse ... Default: 2."):
        the missing words ("levels", "nested") are common in the knowledge base, so ``named`` refuses them, but an
        exact identifier names the subject more surely than any share of words.
        """
        # the names the asker put in backticks are the exact ones ("a new console.Console ... `colorMode`": the
        # page's heading says "new Console(options)")
        terms = code_identifiers(evidence.question)
        best = self.extract(evidence)
        if not terms or not best or self.weakness(evidence) != "coverage":
            return False
        if not all(names_term(_haystack(evidence.context[best[0].passage]), t) for t in terms):
            return False
        return bool(self.quote_answers_kind(best[0], evidence))

    def quote_answers_kind(self, extract: Extract, evidence: Evidence, text: str | None = None) -> bool | None:
        """``answers_kind`` of a quoted sentence (or ``text`` quoting it), with its list item's first sentence as its
        subject."""
        i = evidence.spans.index((extract.passage, extract.start, extract.end))
        first = self._scored_items(evidence)[2][i][0]
        return answers_kind(evidence.question, text or extract.text, evidence.sentence(first) if first != i else "")

    def named(self, evidence: Evidence) -> bool:
        """True when the question names its subject (a name or quoted term) and one passage holds each name, quoted
        term, number and date in it (a date in any format), and lacks only topic words that no passage of the
        knowledge base holds ("dad", "birthday": its wording, not a relation the knowledge base states elsewhere,
        like the "born" of "When was Rhona Callister born?" put to a page that never says when)."""
        if self.known is None:
            return False
        question, asked = without_dates(evidence.question)
        terms = [*names(question), *identifiers(question)]
        if not terms:
            return False
        terms += numbers(question)
        topic = [w for w in topic_words(question) if w not in _PHRASING and self._weight(w)]
        for hit in evidence.context:
            text = _haystack(hit)
            held = dates(text) if asked else []
            words = {w[:STEM] for w in content_words(text)}
            if all(contains(text, t) for t in terms) and all(held_date(d, held) for _, d in asked) and \
                    not any(self.known(w) for w in topic if w[:STEM] not in words):
                return True
        return False

    def weakness(self, evidence: Evidence) -> str | None:
        """Why the passages do not hold the answer (``weak``): "retrieval", "coverage", or None."""
        if not self.config.abstain:
            return None
        best = self.extract(evidence)
        strong_sentence = bool(best) and best[0].score >= self.config.min_evidence
        retrieval = self.retrieval_score(evidence)
        if retrieval < self.config.min_retrieval and not strong_sentence:
            return "retrieval"
        return "coverage" if retrieval < self.config.close_retrieval and not self.covered(evidence) else None


def _heading(hit: Hit) -> str:
    """A passage's title and section: what every sentence of it is about."""
    return f"{hit.passage.title} {hit.passage.metadata.get('section') or ''}"


def _haystack(hit: Hit) -> str:
    """What a passage says, for word checks: its title, section and text."""
    return f"{hit.passage.title}. {hit.passage.metadata.get('section') or ''}. {hit.passage.text}"
