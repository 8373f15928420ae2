"""What a question asks for: the code names it names (in backticks or not), and the kind of answer it wants (a
number, a code name, an error, a default, a place). The sentence scorer (``rag.grounding.sentences``) and the answer
checks read a question through these.

Example:
    >>> wants_number("How many listeners can an event have?"), wants_code("Which event fires first?")
    (True, True)
"""

from __future__ import annotations

import re

from rag.text import content_words

# `code`, "quoted" or 'quoted' terms, snake_case / dotted / camelCase identifiers
# (an abbreviation of single letters, "i.e." or "e.g.", is no dotted name)
_IDENTIFIER = re.compile(r"`([^`\n]{1,60})`|(?<!\w)[\"“']([^\"”'\n]{1,40})[\"”'](?!\w)"
                         r"|\b(?!(?:[A-Za-z]\.)+[A-Za-z]\b)"
                         r"([A-Za-z_]\w*(?:[._]\w+)+|[A-Za-z]*[a-z][A-Z]\w*|[A-Z]{2,}[a-z]+\w*)\b"
                         r"|\b([A-Za-z_]\w*)(?=\(\d?\))")  # a call or a manual page: open(), getaddrinfo(3)
_WANTS_NUMBER = re.compile(r"\b(how (many|much|long|tall|high|old|far|deep|big|often|large)|what (year|temperature|"
                           r"date|time|percentage|age|size|height|length|capacity|port|limit|timeout)|when|"
                           r"which year|default (value|size|limit|timeout|number)|(status|exit) codes?|"
                           r"(above|below|beyond|over|under|up to) (what|which)|"
                           r"(maximum|minimum|highest|lowest|largest|smallest)\s+(\w+\s+)?(size|number|length|value|port|"
                           r"limit|timeout|delay|count)|in (bytes|[kmgt]i?b|seconds|milliseconds|ms|minutes|hours|days|percent))\b",
                           re.IGNORECASE)
_LATER_ASKING = re.compile(r"\b(what|which|who|whom|whose|how|where|why)\b", re.IGNORECASE)
# questions that want a code name: the sentence that answers names one the question does not
_WANTS_CODE = re.compile(r"\b(which|what)\s+(\w+\s+){0,2}(method|function|event|option|property|class|symbol|module|"
                         r"constant|flag|header|signal|error code|socket option)s?\b", re.IGNORECASE)
# questions that want an error: "What error is thrown if ...", "Which exception ...", "Which error code ..."; the
# sentence that answers names one the question does not (RangeError, ERR_INVALID_ARG_TYPE, EBADF)
_WANTS_ERROR = re.compile(r"\b(which|what)\s+(\w+\s+){0,2}(errors?|exceptions?)\b", re.IGNORECASE)
# another name of what the question names: "what was X called", "under which older name", "what is its alias"
_WANTS_OTHER_NAME = re.compile(r"\b(which|what)\s+(\w+\s+){0,2}(names?|alias(es)?)\b|\b(was|were|is|are)\s+\S+\s+"
                               r"(called|named|renamed)\b", re.IGNORECASE)
# questions that want a place (a birthplace, a home town): the sentence that answers names one the question does not
_WANTS_PLACE = re.compile(r"\bwhere\b[^?]*\b(born|from|grow|grew|raised|lives?|lived)\b|\b(born|from|grew up|raised|lives?|"
                          r"lived)\s+where\b|\b(which|what)\s+(city|town|country|village|county|province)\b|"
                          r"\bbirthplace\b|\bhome ?town\b|\bplace of birth\b", re.IGNORECASE)
# people ask for a default without the word: "if I never change it", "unless you set `tabSize`", "when you don't
# give one", "if you leave `colorMode` out", "out of the box", "when no ipv4 argument is given"
_SETS = (r"(chang(e|es|ed)|sets?|giv(e|es|en)|gave|pass(es|ed)?|specif(y|ies|ied)|configur(e|es|ed)|provid(e|es|ed)|"
         r"suppl(y|ies|ied)|overrid(e|es|den))")
_DEFAULT_ASKED = re.compile(
    rf"\bdefault(s|ed)?\b|\bout of the box\b|\bunless\b|(\bnever|\bnot|n['’]t)\s+(\w+\s+)?{_SETS}\b|"
    rf"\b(no|none|nothing)\b(\s+\S+){{0,2}}\s+(is|are)\s+{_SETS}\b|\b(gives?|pass(es)?)\s+(none|nothing)\b|"
    r"\b(leave|leaves|left|leaving)\b(\s+\S+){0,2}\s+(out|unset|alone|empty)\b|\bomit(s|ted|ting)?\b|"
    r"\bwithout\s+(one|it|any|setting|passing|giving|specifying|configuring|changing)\b", re.IGNORECASE)
# "how wide/long/..." words name the answer's type, not its topic: the answer sentence says "61 centimetres across"
_ASKING = frozenset("wide long tall high old far deep big often many much large width length height temperature year "
                    "date time".split())


def identifiers(question: str) -> list[str]:
    """Code identifiers and quoted terms in ``question``, in order: what an answer sentence must name exactly."""
    found = [next(g for g in m.groups() if g) for m in _IDENTIFIER.finditer(question)]
    return list(dict.fromkeys(t.strip() for t in found if t.strip()))


def code_identifiers(question: str) -> list[str]:
    """The code identifiers ``question`` names exactly: those the asker put in backticks (a call without its
    arguments), else its snake_case, dotted, camelCase and call names; never quoted words.

    Example:
        >>> code_identifiers("What color mode does a new console.Console use without `colorMode`?")
        ['colorMode']
    """
    found = backticked(question) or [m.group(3) or m.group(4) for m in _IDENTIFIER.finditer(question)]
    return list(dict.fromkeys(t.strip() for t in found if t and t.strip()))


def backticked(question: str) -> list[str]:
    """The code names the asker put in backticks, a call without its arguments: the names the question is about.

    Example:
        >>> backticked("How long does an https.Server keep a connection open (`server.keepAliveTimeout`)?")
        ['server.keepAliveTimeout']
    """
    marked = [re.sub(r"\(.*\)$", "", m.group(1)).strip() for m in _IDENTIFIER.finditer(question) if m.group(1)]
    return [t for t in marked if t]


def wants_number(question: str) -> bool:
    """True for questions whose answer is nearly always a number (how many, when, what year, default size...).

    "When" that opens a clause before another question word, or after it, asks nothing of time ("When
    stringDecoder.end() is called, what are the bytes replaced with?", "Which event fires when the server answers?").

    Example:
        >>> wants_number("When was the kiln built?"), wants_number("When end() is called, what is returned?")
        (True, False)
    """
    return any(m.group(0).lower() != "when" or not (_LATER_ASKING.search(question, m.end())
                                                    or _LATER_ASKING.search(question, 0, m.start()))
               for m in _WANTS_NUMBER.finditer(question))


def wants_code(question: str) -> bool:
    """True for questions whose answer is a code name (which method, event, option, constant...), or another name of
    a code identifier the question names ("What was `cluster.isPrimary` called before v16?", "Under which older name
    can `kill()` be called?").

    Example:
        >>> wants_code("What was cluster.isPrimary called before v16?"), wants_code("What was the ship called?")
        (True, False)
    """
    return bool(_WANTS_CODE.search(question)) or (
        _WANTS_OTHER_NAME.search(question) is not None and bool(code_identifiers(question)))


def wants_error(question: str) -> bool:
    """True for questions whose answer is an error's name ("What error is thrown if ...", "Which exception ...")."""
    return bool(_WANTS_ERROR.search(question))


def wants_default(question: str) -> bool:
    """True for questions about a default, in so many words or not ("unless you set `tabSize`").

    Example:
        >>> wants_default("If I never change it, how many headers are accepted?"), wants_default("Which event?")
        (True, False)
    """
    return bool(_DEFAULT_ASKED.search(question))


def wants_place(question: str) -> bool:
    """True for questions whose answer is a place (where was X born, which city does X come from...)."""
    return bool(_WANTS_PLACE.search(question))


def topic_words(question: str) -> list[str]:
    """The question's content words that name its topic, not the type of answer it wants ("how long", "what year")."""
    return [w for w in content_words(question) if w not in _ASKING]
