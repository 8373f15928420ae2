"""Which passage sentences answer the question: one score for the extractive answer, the support check's evidence
and the prompt's context selection.

A sentence answers when it is close to the question (embedding cosine), holds the question's words (share of them,
with its passage's title and section as context, and a sentence-level BM25 over the retrieved sentences with the
knowledge base's IDF, so rare words count more), holds the exact code identifiers and quoted terms the question
names (``max_age``, ``'close'``; a sentence under a section named by one counts: API pages name the function in
the heading, not in each sentence; a passage that never names the code the asker put in backticks loses), and adds
something the question did not say. A question about a default wants the line that states a default and a value
("The default value of this parameter is 511.", best in so many words: "Default: 2000"), not a line with another
value ("If set to 0, no limit will be applied."). A sentence's list item or the sentence before it is its context:
"Defaults to 600." answers "What is the default max_age?" when the sentence before it names ``max_age``. Changelog
lines ("📝 Add missing compresslevel parameter ...") name the terms without answering.

The mix follows extractive context compression, which ranks sentences by their relevance to the query and keeps the
best under a budget (RECOMP's extractive compressor, Xu et al. 2023, arXiv:2310.04408; LongLLMLingua's
question-aware coarse-to-fine selection, Jiang et al. 2023, arXiv:2310.06839), with lexical features in place of
a trained scorer: a 135M model has no time for a second model per sentence on two cores.

Example:
    >>> identifiers("What is the default `max_age` of CORSMiddleware?")
    ['max_age', 'CORSMiddleware']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

from rag.grounding.asks import (backticked, code_identifiers, identifiers, wants_code, wants_default, wants_error,
                                wants_number, wants_place)
from rag.text import STEM, contains, content_words, dates, held_date, names, strip_markers

# the term a definition list item, an option line or a table row starts with: what the item is about
_HEAD = re.compile(r"^[\s*•+|-]*(`[^`\n]{1,60}`|[A-Za-z_][\w.]*(?:\(\d?\))?)")
# CHANGELOG.md, release-notes/..., HISTORY.rst (a folder named "history" holds history, not a changelog)
_CHANGELOG_SOURCE = re.compile(r"(?:^|[/\\])(?:change[-_ ]?log|changes|release[-_ ]?notes|whats[-_ ]?new)(?:[/\\.\-_]|$)"
                               r"|(?:^|[/\\])(?:history|news)\.(?:md|rst|txt)$", re.IGNORECASE)
_CHANGELOG_LINE = re.compile(r"^\W*(?:add|fix|update|bump|remove|refactor|upgrade|deprecate|document|improve|tweak|"
                             r"drop|rename)(?:s|ed)?\b.*(?:#\d+|\bPR\b|@\w+)|\(#\d+\)|\bPR #\d+", re.IGNORECASE)
_ERROR_NAME = re.compile(r"\b(?:[A-Z]\w*(?:Error|Exception)|ERR_[A-Z0-9_]+|E[A-Z]{3,})\b")
# "What is the default backlog?" is answered by a line that states a default ("**Default:** `511`", "defaults to",
# "by default"), in the sentence or its list item's first line, and names a value the question does not
_DEFAULT = re.compile(r"\bdefault(s|ed)?\b", re.IGNORECASE)
_LITERAL = re.compile(r"`[^`\n]{1,60}`|'[^'\n]{1,40}'|\b(true|false|null|undefined|none|infinity|nan)\b|-?\d[\d,._]*",
                      re.IGNORECASE)
_DEFAULT_VALUE = re.compile(r"\bdefault(?:s to|\s+(?:value\s+)?is|:)\s*([^\s,;]+)", re.IGNORECASE)  # "Default: X"
_QUANTITY = re.compile(r"(?<![A-Za-z_\d])\d[\d,.]*\d|(?<![A-Za-z_\d])\d")
_UNBOUNDED = re.compile(r"\b(infinity|unlimited|unbounded)\b", re.IGNORECASE)
# a cross-reference points at the answer elsewhere: "See the 'checkContinue' event on Server."
_SEE = re.compile(r"^\W*(see|refer to|for (more|details|further))\b", re.IGNORECASE)
# a negation and the rest of its clause, up to three words: "will not terminate immediately", "does not spawn a shell"
_NEGATION = re.compile(r"(?:\b(?:not|never|cannot|no longer)|\b\w+n['’]t)\s+([^.,;:!?()\n]*)",
                       re.IGNORECASE)
# a line of source code: "const defaults = {", "});", "(line, tlsSocket) => {", "// ...", "require('node:fs')"
# (a hard-wrapped prose line may start with "function is called" or "import the module": those need their syntax)
_CODE = re.compile(r"=>|\{\s*$|\brequire\(|^\s*(?:[})\]]|//|(?:const|let|var)\s+\w+\s*=|function\s*\w*\s*\(|"
                   r"import\s+.+\bfrom\s+['\"])", re.MULTILINE)
# a question about what code gives back or prints: its answer may be a line of code ("// Returns: '/foo/bar/baz'")
_ASKS_OUTPUT = re.compile(r"\b(return|returns|returned|print|prints|printed|output|outputs|log|logs|logged|result)\b",
                          re.IGNORECASE)
_DOUBLE_QUOTED = re.compile(r"[\"“][^\"“”\n]{1,80}[\"”]")
MIN_WORDS = 3  # shorter fragments ("## Kiln", "Defaults to 600.") are not answers on their own
BM25_K1, BM25_B = 1.2, 0.75


def answers_type(question: str, answer: str) -> bool:
    """False when the question asks for a number (how many, when, what year...) and the answer holds none, for a
    default and the answer names no value the question does not, for a place (where was X born...) and the answer
    names none the question does not, or for a code name (which method, event, option...) and the answer names none
    the question does not. Any answer, generated or quoted; ``answers_kind`` is the stricter check of a quoted line.
    """
    text = strip_markers(answer)  # "[1]" is no number
    if wants_number(question) and not states_number(text):
        return False
    if wants_default(question) and not new_value(question, text):  # "... is the default agent object."
        return False
    if wants_place(question) and not new_name(question, text):
        return False
    return not wants_code(question) or bool(set(identifiers(text)) - set(identifiers(question)))


def answers_kind(question: str, text: str, subject: str = "") -> bool | None:
    """Whether ``text`` (with ``subject``, the first sentence of its list item) holds an answer of the kind the
    question asks for: a default's value, a number, a code name the question does not hold; None when the question
    asks for none of these kinds.

    Example:
        >>> answers_kind("How deep does it go unless you set `depth`?", "Default: 2.")
        True
    """
    if wants_default(question):
        return _states_default(question, text, subject)
    if wants_number(question):
        return new_number(question, text)
    if wants_code(question):
        return bool(set(identifiers(text)) - set(identifiers(question)))
    return None


def quantities(text: str) -> list[str]:
    """The numbers ``text`` states as values: not the digits of a name ("IPv4", "v6", "SHA256", "x86_64").

    Example:
        >>> quantities("An IPv4/v6 datagram of 65,507 bytes, 16K each")
        ['65,507', '16']
    """
    return [n.rstrip(".,") for n in _QUANTITY.findall(text)]


def new_number(question: str, text: str) -> bool:
    """True when ``text`` states a number ``question`` does not, or a limit with none ("unlimited")."""
    return any(not contains(question, n) for n in quantities(text)) or _UNBOUNDED.search(text) is not None


def states_number(text: str) -> bool:
    """True when ``text`` states a number, or a limit with none ("**Default:** `Infinity`", "unlimited")."""
    return bool(quantities(text)) or _UNBOUNDED.search(text) is not None


def new_name(question: str, text: str) -> bool:
    """True when ``text`` names something (a capitalised name or code identifier) that ``question`` does not. A
    title in double quotes names a work ("The Hollow Weir"), not a place: it does not count."""
    bare = _DOUBLE_QUOTED.sub(" ", text)
    return any(not contains(question, re.sub(r"['’]s$", "", n)) for n in [*names(bare), *identifiers(bare)])


def head(text: str) -> str | None:
    """The identifier a definition item, option line or table row starts with, or None: what the item is about.

    Example:
        >>> head("trackUnmanagedFds {boolean} If this is set to true, ..."), head("The highest priority.")
        ('trackUnmanagedFds', None)
    """
    match = _HEAD.match(text)
    found = identifiers(match.group(1)) if match else []
    return found[0] if found else None


def names_term(text: str, term: str) -> bool:
    """True when ``text`` holds ``term`` as written (case-insensitive, on identifier boundaries)."""
    return re.search(rf"(?<![\w.]){re.escape(term.lower())}(?![\w])", text.lower().replace("`", "")) is not None


def sibling(question: str, text: str) -> str | None:
    """A code identifier ``text`` names that extends one the question asks about, when ``text`` does not name that one
    itself: ``child_process.execFile`` for a question about ``child_process.exec()``. The line is about a sibling.

    Example:
        >>> sibling("What shell does child_process.exec() use?", "child_process.execFile() spawns no shell.")
        'child_process.execFile'
        >>> sibling("How many EventEmitter listeners?", "EventEmitters warn after 10 listeners.") is None
        True
    """
    for term in code_identifiers(question):
        if names_term(text, term):
            continue
        for found in identifiers(text):
            rest = found[len(term):]
            if found.lower().startswith(term.lower()) and rest and rest.lower() not in ("s", "es", "'s"):
                return found
    return None


def changelog(text: str, source: str) -> bool:
    """A changelog or release-notes line: it names the terms it changed without saying what they are."""
    first = text.lstrip()[:1]
    emoji = bool(first) and unicodedata.category(first) == "So"
    return emoji or bool(_CHANGELOG_LINE.search(text)) or bool(_CHANGELOG_SOURCE.search(source))


class SentenceScorer:
    """Scores passage sentences as answers to a question (higher is better, about 0-1.3).

    Args:
        idf: the corpus IDF of a word (None for a stop word); without it every word weighs 1.
    """

    def __init__(self, idf: Callable[[str], float | None] | None = None) -> None:
        self.idf = idf

    def scores(self, question: str, sentences: Sequence[str], contexts: Sequence[str], sources: Sequence[str],
               similarity: np.ndarray, items: Sequence[tuple[int, list[int]]],
               passages: Sequence[str] = ()) -> list[float]:
        """One score per sentence.

        Args:
            sentences: the sentences; ``contexts`` each one's title and section; ``sources`` its source path.
            similarity: cosine of each sentence with the question.
            items: each one's list item or paragraph: the index of its first sentence and of the others near it
                (``items``).
            passages: each one's passage (title, section and text), when known.
        """
        asked = content_words(question)
        terms = identifiers(question)
        weights = self._weights(asked)
        bm25 = self._bm25(asked, weights, sentences)
        number = wants_number(question)
        code = wants_code(question)
        place = wants_place(question)
        error = wants_error(question)
        asked_dates = dates(question)
        default = wants_default(question)
        affirmed = _NEGATION.search(question) is None
        # what a negated question asks about the absence of ("when stdout is not a TTY"), defaults aside
        negated = [] if default else _negated(question)
        negated_stems = {w[:STEM] for w in negated}
        prose = _ASKS_OUTPUT.search(question) is None
        pinned = backticked(question)
        # each passage is checked once, not once per sentence of it
        unnamed = {text for text in set(passages) if not any(names_term(text, t) for t in pinned)} if pinned else set()
        out = []
        for i, text in enumerate(sentences):
            first, near = items[i]
            subject = sentences[first] if first != i else ""
            # a sentence is as close to the question as the sentence that says what it is about, nearly
            close = max(float(similarity[i]), 0.9 * float(similarity[first]))
            out.append(self._score(text, contexts[i], sources[i], subject, " ".join(sentences[j] for j in near),
                                   asked, terms, bm25[i], close, question if number else None))
            if code:
                out[-1] += 0.15 if set(identifiers(text)) - set(terms) else 0.0
            if error and any(not names_term(question, e) for e in _ERROR_NAME.findall(text)):
                out[-1] += 0.15  # "If this value is not a positive number, a RangeError is thrown."
            if place:  # "born where?": the line that names a town, not the one about the parents
                out[-1] += 0.1 if new_name(question, text) else -0.1
            if default and _states_default(question, text, subject):
                out[-1] += 0.2  # 0.1 and 0.3 each lost answers on the documentation sets (bench/docs.py)
                if _names_default(question, text):
                    out[-1] += 0.1  # the value itself: "{number} Default: 2000", "Default: 'localhost'."
            elif default and new_value(question, text):
                out[-1] -= 0.1  # a value, not the default: "If set to 0, no limit ...", "response.statusCode = 404;"
            if prose and _CODE.search(text):
                out[-1] -= 0.1  # a code example beside the prose that answers: "const defaults = {cwd: ...};"
            if affirmed and _denies(text, asked):
                out[-1] -= 0.1  # "will not terminate immediately" for "which signal terminates it immediately?"
            if negated and {w[:STEM] for w in content_words(text)} & negated_stems:
                # "When stdout is not a TTY, this method does nothing." for "What does console.clear() do when stdout
                # is not a TTY?", not "When stdout is a TTY, calling console.clear() will attempt to clear the TTY."
                out[-1] += 0.1 if _denies(text, negated) else -0.1
            if unnamed and passages[i] in unnamed:
                # a passage that never names the `code` the asker pinned is about something else: "The Connection:
                # keep-alive header is always sent ..." of http.Agent for "How long does an https.Server keep an idle
                # keep-alive connection open by default (`server.keepAliveTimeout`)?"
                out[-1] -= 0.1
            if asked_dates and _other_day(text, asked_dates):
                out[-1] -= 0.3  # a look-alike's line: "born on 04/06/1966" is not "born on 23 August 1966"
        return out

    def _score(self, text: str, context: str, source: str, subject: str, item: str, asked: list[str],
               terms: list[str], bm25: float, similarity: float, number: str | None) -> float:
        """``number``: the question, when it asks for a number."""
        words = content_words(text)
        if len(words) < MIN_WORDS:
            return 0.0
        # the sentence, its title and section, and the first sentence of its list item or paragraph (what it is
        # about: "keepAliveMsecs {number} ..." for "Default: 1000.") say what it is about; the rest of the item half
        own = {w[:STEM] for w in [*words, *content_words(context), *content_words(subject)]}
        rest = {w[:STEM] for w in content_words(item)}
        overlap = sum(1.0 if w[:STEM] in own else 0.5 if w[:STEM] in rest else 0.0 for w in asked) / max(len(asked), 1)
        score = 0.45 * max(similarity, 0.0) + 0.45 * overlap + 0.1 * bm25
        if terms:  # the identifiers a question names exactly are what it is about; so is a section named by one
            # an item headed by another identifier names the asked one in passing: "PRIORITY_HIGH ... below
            # PRIORITY_HIGHEST. This corresponds to HIGH_PRIORITY_CLASS" is not PRIORITY_HIGHEST's row
            lead = head(subject or text)
            aside = lead is not None and not any(names_term(lead, t) for t in terms)
            named = sum(1.0 if not aside and (names_term(text, t) or names_term(subject, t)) else
                        0.75 if names_term(context, t) else
                        0.5 if names_term(f"{text} {subject} {item}", t) else 0.0 for t in terms)
            score += 0.2 * named / len(terms)
        if number is not None:  # a number the question states is not its answer ("Default: 1." for "... reset to 1?")
            score += 0.1 if new_number(number, text) else -0.1
        if not set(words) - set(asked):
            score -= 0.2  # a sentence that only restates the question answers nothing
        if changelog(text, source):
            score -= 0.25
        if _SEE.match(text):
            score -= 0.1
        return score

    def _weights(self, asked: list[str]) -> dict[str, float]:
        """Each question word's weight: its corpus IDF (1 without one; 0 for a word the corpus never holds)."""
        if self.idf is None:
            return {w: 1.0 for w in asked}
        return {w: max(self.idf(w) or 0.0, 0.0) for w in asked}

    def _bm25(self, asked: list[str], weights: dict[str, float], sentences: Sequence[str]) -> list[float]:
        """Sentence-level BM25 of the question against each sentence, scaled so the best is 1."""
        bags = [[w[:STEM] for w in content_words(s)] for s in sentences]
        if not bags:
            return []
        mean = max(sum(len(b) for b in bags) / len(bags), 1.0)
        out = []
        for bag in bags:
            norm = BM25_K1 * (1 - BM25_B + BM25_B * len(bag) / mean)
            tf = {w: bag.count(w[:STEM]) for w in asked}
            out.append(sum(weights[w] * tf[w] * (BM25_K1 + 1) / (tf[w] + norm) for w in asked if tf[w]))
        top = max(out)
        return [x / top if top > 0 else 0.0 for x in out]


def _negated(text: str) -> list[str]:
    """The content words ``text`` negates, up to three words after each "not" ("not a TTY": ``['tty']``)."""
    return [w for m in _NEGATION.finditer(text) for w in content_words(" ".join(m.group(1).split()[:3]))]


def _denies(text: str, asked: list[str]) -> bool:
    """True when ``text`` negates a word the question asks about, within three words of its "not" ("processes will
    not terminate immediately" for "Which signal terminates a process immediately?"): it says what does not happen.
    For questions that are not negated themselves."""
    stems = {w[:STEM] for w in asked}
    return any(w[:STEM] in stems for w in _negated(text))


def literals(text: str) -> list[str]:
    """The literal values ``text`` names: quoted strings and true, false, null, undefined, none, Infinity, NaN."""
    return [m.group(0).strip("`'") for m in _LITERAL.finditer(text) if not m.group(0)[0].isdigit()
            and m.group(0)[0] != "-"]


def states_default_line(text: str, subject: str = "") -> bool:
    """True when ``text`` or its list item's first sentence says what a default is ("**Default:** `200`")."""
    return bool(_DEFAULT.search(text) or _DEFAULT.search(subject))


def _states_default(question: str, text: str, subject: str) -> bool:
    """True when ``text`` (or its list item's first line) says what a default is and ``text`` names a value (a code
    literal, a number, true/false/null) the question does not."""
    return states_default_line(text, subject) and new_value(question, text)


def _names_default(question: str, text: str) -> bool:
    """True when ``text`` says "Default: X", "defaults to X" or "the default (value) is X" of an X the question does
    not name: the way API pages state a default's value."""
    return any(v.strip(".'\"`") and not contains(question, v.strip(".'\"`")) for v in _DEFAULT_VALUE.findall(text))


def new_value(question: str, text: str) -> bool:
    """True when ``text`` names a value the question does not: a code literal, a quoted string, true/false/null, a
    number, a code identifier (``SCHED_RR``), or what follows "Default:" / "defaults to"."""
    values = [m.group(0).strip("`'") for m in _LITERAL.finditer(text)] + _DEFAULT_VALUE.findall(text)
    values += identifiers(text)
    return any(v.strip(".") and not contains(question, v.strip(".")) for v in values)


def _other_day(text: str, asked: list[frozenset[str]]) -> bool:
    """True when ``text`` states a date and none of its dates can be a date the question gives."""
    held = dates(text)
    return bool(held) and not any(held_date(a, held) for a in asked)
