"""What kind of answer a question asks for: a person, date, number, title, award, category or place.

The teacher (``knowledge.distill.verify``) keeps a fact only when its answer is of the kind asked; the grounder
(``rag.grounding.ground``) shows a paraphrase's quote only when it holds a new answer of that kind.
"""

from __future__ import annotations

import re

from rag.text import contains, date_mentions, names, numbers

# the order matters: "Who wrote the book X?" asks for a person, "Which award did X receive?" for an award
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, re.compile(p, re.IGNORECASE)) for k, p in (
    ("person", r"^\s*(who|whom|whose)\b|\b(full name|name of the (author|writer|person|poet|novelist|scientist|"
               r"inventor|mayor)|which (author|writer|person|poet|novelist|scientist|inventor)|by whom|"
               r"written by whom|penned by)\b|^\s*(whose|name the (author|writer|person))\b"),
    ("date", r"\b(what|which|on what) (date|day)\b|\bdate of birth\b|\bbirthday\b|\bborn on\b|\bwhen\b.* born\b"),
    ("number", r"^\s*(how (many|much|long|high|deep|far|old|heavy|tall|wide|big|often)|(in )?what year|"
               r"which year|when)\b|\bwhat (is the )?(number|population|altitude|elevation|weight|height|length|"
               r"temperature|age)\b"),
    ("title", r"\b(book|novel|title|memoir|collection|poem|album|song|film|paper|essay|story|stories)s?\b"),
    ("award", r"\b(award|prize|medal|honou?r|trophy|fellowship|distinction)s?\b"),
    ("category", r"\b(profession|job|occupation|for a living|work(ed)? as|earn(ed)? a living|genre|field|"
                 r"subject|topic|discipline|science|colou?r|material|made of|kind of|type of|species|language|"
                 r"breed|instrument|sport|religion|nationality)\b"),
    ("place", r"^\s*where\b|\b(which|what|in which|from which) (city|town|village|country|region|place|island|"
              r"river|street|county|state)\b|\bbirthplace\b|\bborn where\b|\bcomes? from\b"),
))
DOUBLE_QUOTED = re.compile(r"[\"“]([^\"“”]{3,}?)[\"”]")  # no apostrophes: "Ana's mother's job" quotes nothing
_COUNTING = re.compile(r"\bhow (many|much)\b", re.IGNORECASE)
_YEAR = re.compile(r"1[5-9]\d\d|20\d\d")
AWARD_WORD = re.compile(r"\b(Award|Prize|Medal|Trophy|Cup|Fellowship|Honou?r|Order|Medallion)\b")
# a polite lead-in before the question word: "Do you know who penned X?" asks "who penned X?"
_LEAD_IN = re.compile(r"^\s*(do you (happen to )?know|can you (tell me|say)|could you (tell me|say)|tell me|"
                      r"any idea|i wonder|i'?d like to know)\s*,?\s*(?=(who|whom|whose|where|when|what|which|how)\b)",
                      re.IGNORECASE)


def answer_kind(question: str) -> str | None:
    """The kind of answer ``question`` wants (person, date, number, title, award, category, place), or None.

    Quoted titles are not the question's words ("who penned \"The Paper Lantern\"?" asks for a person, not a
    paper), and a polite lead-in is not its start."""
    asked = _LEAD_IN.sub("", DOUBLE_QUOTED.sub('"…"', question))
    return next((kind for kind, pattern in _KINDS if pattern.search(asked)), None)


def holds_new(question: str, text: str) -> bool:
    """True when ``text`` holds an answer of the kind ``question`` asks for that the question does not: a name of
    two words or more for a person, a place name, a written date, a number (no year for "how many"), a quoted
    title, an award's name. A category (a job, a genre) or an unknown kind never is: no span tells it apart."""
    kind = answer_kind(question)
    # one capital letter is no name: the "C" of "1,340 °C", an initial
    new = [n for n in names(DOUBLE_QUOTED.sub(" ", text)) if len(n) > 1 and not contains(question, n)]
    if kind == "person":
        return any(len(n.split()) >= 2 for n in new)
    if kind == "place":
        return bool(new)
    if kind == "date":  # a written date, not a bare year ("captain since 2019" says nothing of a birth)
        return any(not contains(question, written) for written, _ in date_mentions(text))
    if kind == "number":  # a count is not a year ("won the regatta in 2018" counts no goals)
        counting = _COUNTING.search(question) is not None
        return any(not contains(question, n) and not (counting and _YEAR.fullmatch(n)) for n in numbers(text))
    if kind == "title":
        return any(not contains(question, t) for t in DOUBLE_QUOTED.findall(text))
    if kind == "award":
        return any(AWARD_WORD.search(n) for n in new)
    return False
