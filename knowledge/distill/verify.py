"""Does a teacher's answer answer *the question*? Constraints the passage must meet and the answer's type.

A passage that holds an answer's words is no proof that it answers the question: a sibling biography (same city,
same award pattern, another birth date) holds a name too. Before a fact is taught, two checks that need no model:

* **Constraints** (``unmet``): what the question says about its subject must hold in the passage the teacher read —
  its names, its numbers, its dates (``06/30/1975``, ``30 June 1975`` and ``June 30th, 1975`` are one date) and
  its rare words (``rare``: a word few passages of the knowledge base hold, such as ``geology``). A passage about
  another person, year or place teaches nothing.
* **Answer type** (``answer_kind``, ``fits_kind``): "who / the full name of" wants a person's name, "which book"
  a title, "which award" an award, "where / which city" a place, "when / what date" a date, "how many" a number,
  "what job / genre / colour" a common noun. Only the last kind may rest on content words: elsewhere an answer
  without a name, number or title ("X's writing shows meticulous attention to detail") is no fact.
* **Denials** (``negated``): an answer that says "not" or "never" where the passage's sentence says neither turns
  the passage's fact around with the passage's own words.

These follow the filters of synthetic-QA pipelines: answer-type matching and roundtrip consistency (Alberti et al.,
2019, "Synthetic QA Corpora Generation with Roundtrip Consistency": keep a generated pair only when answering the
question again gives the same answer), here with the question's own constraints as the cheap first filter; the
round-trip agreement itself is in ``data.teach``.

Example:
    >>> unmet("Who is the geology author born in Tormiran on 06/30/1975?",
    ...       "Ana Vel is a geology author born in Tormiran on 12 March 1971.")
    ['06/30/1975']
    >>> answer_kind("Can you name a book Ana Vel has written?")
    'title'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from knowledge.distill.facts import supported, surface
from rag.grounding.kinds import AWARD_WORD, DOUBLE_QUOTED, answer_kind
from rag.text import (GENERIC_NAMES, MONTH_WORDS, STEM, STOP, contains, content_words, date_mentions, dates, held_date,
                      names, normalise, numbers, split_sentences, without_dates)

_QUOTED = re.compile(r"[\"“”']([^\"“”]{3,}?)[\"“”']")


def fits_kind(spans: Sequence[str], answer: str, question: str) -> bool:
    """True when the key ``spans`` of ``answer`` are the kind of answer ``question`` wants.

    Example:
        >>> fits_kind(("meticulous", "attention", "detail"), "It shows meticulous attention to detail.",
        ...           "Can you mention some books written by Moshe Ben-David?")
        False
    """
    kind = answer_kind(question)
    named = [s for s in spans if surface(s, answer)[:1].isupper()]  # "Votordra flows ...": span "votordra"
    counted = [s for s in spans if numbers(s)]
    if kind == "person":
        return any(len(s.split()) >= 2 for s in named)
    if kind == "date":
        return bool(dates(answer)) or any(len(n) == 4 for s in counted for n in numbers(s))
    if kind == "number":
        return bool(counted)
    if kind == "title":
        return any(contains(answer, q) and not contains(question, q) for q in _QUOTED.findall(answer)) or any(
            len(s.split()) >= 2 for s in named)
    if kind == "award":
        return any(AWARD_WORD.search(s) or len(s.split()) >= 2 for s in named)
    if kind == "place":  # an award or a book is no place, however capitalised ("the Northern Feather Award")
        return any(not AWARD_WORD.search(s) for s in named) and not any(AWARD_WORD.search(s) for s in spans)
    if kind == "category":  # a genre or a job is no title or award ('writes in the genre of "The Iron Loom"')
        titled = [q for q in DOUBLE_QUOTED.findall(answer) if any(contains(q, s) for s in spans)]
        return bool(spans) and len(spans) <= 3 and not titled and not any(AWARD_WORD.search(s) for s in spans)
    return bool(named or counted)  # an unknown kind: content words alone are no fact


# words that ask rather than say what about ("Can you name one book ...", "Tell me the full name ...")
_ASKING = frozenset("name names full one some any mention tell know idea exactly please title called kind type "
                    "give given list".split())


def off_topic(question: str, spans: Sequence[str], passage: str) -> bool:
    """True when no passage sentence that holds the answer says what the question asks about.

    "What did Ana Vel's father do?" answered "a geology author" (the first sentence: what *Ana Vel* does) is off
    topic when the passage has a sentence about her father. Only the question's words that the passage holds at
    all count (a question's "dad" cannot be asked of a passage that says "father"), and its names do not (they
    are ``unmet``'s business).
    """
    named = {w for n in constraints(question)["names"] for w in normalise(n).split()}
    stems = {w[:STEM] for w in content_words(passage)}
    topic = {w[:STEM] for w in content_words(question)
             if w not in _ASKING and w not in named and not w.isdigit()} & stems
    holding = [s for s in split_sentences(passage) if any(contains(s, span) for span in spans)]
    if not topic or not holding:
        return False
    return not any(_says(s, topic, spans, named) for s in holding)


_CLAUSE = re.compile(r"[,;]|\b(?:and|but|while|whereas)\b")


def _says(sentence: str, topic: set[str], spans: Sequence[str], named: set[str]) -> bool:
    """True when ``sentence`` says the topic about the answer: it holds a topic word, and when it is made of clauses
    ("Her father was a baker and her mother a weaver"), the answer's clause either holds one too or says nothing
    else ('"The Salt Road"' after "best known for the books ..."). "What did her mother do?" -> "a baker" is a
    parallel clause's answer: off topic."""
    if not topic & {w[:STEM] for w in content_words(sentence)}:
        return False
    clauses = [c for c in _CLAUSE.split(sentence) if c.strip()]
    own = [c for c in clauses if any(contains(c, span) for span in spans)]
    if len(clauses) < 2 or not own:  # one clause, or an answer cut by the split: the sentence as a whole
        return True
    answer = {w[:STEM] for span in spans for w in content_words(span)}
    for clause in own:
        words = {w[:STEM] for w in content_words(clause)} - answer - {w[:STEM] for w in named}
        if topic & words or not words:
            return True
    return False


def constraints(question: str, rare: Callable[[str], bool] | None = None) -> dict[str, list]:
    """What ``question`` says about its subject: ``names``, quoted ``titles`` (met only word for word), ``numbers``
    (outside dates), ``dates``, ``words``."""
    titles = DOUBLE_QUOTED.findall(question)
    question, mentions = without_dates(question)
    out_names = []
    for name in names(question):
        words = [w for w in _name_words(name) if w.lower() not in MONTH_WORDS]
        if words:
            out_names.append(" ".join(words))
    nums = numbers(question)
    words = [w for w in content_words(question) if rare is not None and not w.isdigit() and rare(w)
             and not any(w in normalise(n).split() for n in out_names)]
    return {"names": out_names, "titles": titles, "numbers": nums, "dates": mentions, "words": words}


def fault(question: str, answer: str, spans: Sequence[str], passage: str, text: str | None = None) -> str | None:
    """Why ``answer`` (its key ``spans``) does not answer ``question`` from ``passage`` (title and text), or None.

    ``unsupported``: a span, or a date it states, is not in the passage; ``negated``: it denies what the passage
    states ("The Northern Compass Award was not awarded by Tortes Bravozol" from "... won the Northern Compass
    Award"); ``answer type``: not the kind asked for;
    ``off topic``: the sentence holding it says something else (its father's job for her mother's), judged on
    ``text`` (the passage's body; default ``passage``). The teacher's test of its own answer, and the router's and
    the closed-book guard's test of the adapter's: a passage the question's constraints already singled out.
    """
    if not (answer and supported(spans, passage)) or unstated_dates(answer, passage):
        return "unsupported"
    if negated(answer, spans, passage):
        return "negated"
    if not fits_kind(spans, answer, question):
        return "answer type"
    if off_topic(question, spans, passage if text is None else text):
        return "off topic"
    return None


_NEGATION = re.compile(r"\b(not|never|neither|nor|cannot)\b|n['’]t\b", re.IGNORECASE)


def negated(answer: str, spans: Sequence[str], passage: str) -> bool:
    """True when ``answer`` denies (not, never, n't) and no sentence of ``passage`` holding its ``spans`` (all of
    them, else any) does: the spans are the passage's, the claim about them is turned around.

    Example:
        >>> negated("The award was not given to Ana Vel.", ("Ana Vel",), "Ana Vel won the Key Award in 2001.")
        True
        >>> negated("Ana Vel never married.", ("Ana Vel",), "Ana Vel never married; she wrote six books.")
        False
    """
    if not _NEGATION.search(answer):
        return False
    sentences = split_sentences(passage)
    holding = ([s for s in sentences if all(contains(s, span) for span in spans)]
               or [s for s in sentences if any(contains(s, span) for span in spans)] or [passage])
    return not any(_NEGATION.search(s) for s in holding)


def foreign(answer: str, spans: Sequence[str], own: Sequence[str], others: Sequence[str],
            rare: Callable[[str], bool] | None = None) -> list[str]:
    """The key ``spans`` of ``answer`` that belong to another subject: not held by the subject's passages (``own``)
    and either identifying (a name, title or number: capitalised or with a digit) or a ``rare`` word another
    passage (``others``) holds ("botany", another author's genre). A common word ("writes", "know") is the
    answer's wording, not something lent.

    Example:
        >>> foreign("It was Bralo Vokave.", ("Bralo Vokave",), ["Dragra Vokave won the Golden Anchor Award."],
        ...         ["Bralo Vokave won the Golden Key Award."])
        ['Bralo Vokave']
    """
    out = []
    for span in spans:
        if any(contains(text, span) for text in own):
            continue
        if surface(span, answer)[:1].isupper() or numbers(span):
            out.append(span)
        elif (rare is None or any(rare(w) for w in normalise(span).split())) and \
                any(contains(text, span) for text in others):
            out.append(span)
    return out


def unstated_dates(answer: str, passage: str) -> list[str]:
    """The dates ``answer`` states that ``passage`` does not (its day, month and year each occur there, apart).

    Example:
        >>> unstated_dates("The passage is dated 2 September 2015.", "Born on 2 September 1981; Prize in 2015.")
        ['2 September 2015']
    """
    held = dates(passage)
    return [written for written, d in date_mentions(answer) if not held_date(d, held)]


def unmet(question: str, passage: str, rare: Callable[[str], bool] | None = None) -> list[str]:
    """The constraints of ``question`` that ``passage`` does not meet (empty: it may answer the question)."""
    return missing(constraints(question, rare), passage)


def missing(found: dict[str, list], passage: str) -> list[str]:
    """The ``constraints`` of a question, ``found`` once, that ``passage`` does not meet (to test many passages)."""
    words = normalise(passage).split()
    stems = {w[:STEM] for w in words}
    passage_dates = dates(passage)
    out = [n for n in found["names"] if not spelled(n, words)]
    out += [t for t in found["titles"] if not contains(passage, t)]  # "The Amber Quarry" is no "Amber Lantern"
    out += [n for n in found["numbers"] if not contains(passage, n)]
    out += [written for written, d in found["dates"] if not held_date(d, passage_dates)]
    out += [w for w in found["words"] if w[:STEM] not in stems]
    return out


def spelled(name: str, words: Sequence[str]) -> bool:
    """True when the passage's normalised ``words`` write ``name``: its words in order, with only stop words
    between them ("Bank of England"), and each part of a hyphenated word anywhere ("Vequidan-born" is met by
    "Born in Vequidan"). "Harbour Lantern Award" is not met by a passage holding "Harbour Feather Award" and a
    book called "The Paper Lantern": a look-alike's biography holds every word of the award and not the award.
    """
    parts = [w for w in name.split() if "-" in w]
    run = normalise(" ".join(w for w in name.split() if "-" not in w)).split()
    have = set(words)
    if not all(p in have for w in parts for p in normalise(w).split()):
        return False
    return not run or any(_run_at(run, words, i) for i, w in enumerate(words) if w == run[0])


def _run_at(run: Sequence[str], words: Sequence[str], start: int) -> bool:
    """``run`` is written from ``words[start]`` on, stop words allowed between its words."""
    j = start + 1
    for w in run[1:]:
        while j < len(words) and words[j] != w and words[j] in STOP:
            j += 1
        if j >= len(words) or words[j] != w:
            return False
        j += 1
    return True


def _name_words(name: str) -> list[str]:
    """A name's words without possessives and generic words ("Ana Vel's" -> ["Ana", "Vel"])."""
    words = [re.sub(r"['’]s$", "", w) for w in name.split()]
    return [w for w in words if w and w not in GENERIC_NAMES and w.lower() not in STOP]
