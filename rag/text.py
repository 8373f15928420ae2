"""Text rules shared by grounding, attribution, distillation and evaluation: one home for each.

``content_words`` is the one definition of "the words that carry meaning" (stop words out, numbers normalised);
``split_sentences`` cuts answers and passages alike; ``numbers``/``names`` are the spans a claim must not invent.

Example:
    >>> content_words("The Velmora kiln reaches 1,340 °C.")
    ['velmora', 'kiln', 'reaches', '1340']
    >>> contains("It reaches 1340 degrees", "1,340")
    True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]*)*")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# a sentence ends after . ! ? (with closing quotes and any "[n]" markers written after it) before a capital,
# a digit, a `code` span or a "[n]" that opens the next one; blank lines and list items end one too ("- x",
# "1. x"; "-20" that starts a line is a number)
_SENTENCE_END = re.compile(r"(?<=[.!?])(?P<tail>(?:\s*\[\d+(?:\s*[-–,]\s*\d+)*\])*[\"')\]]*)\s+(?=[\"'(*]*(?:[A-Z0-9]|`))"
                           r"|\n\s*\n|\n(?=\s*[-*•]\s|\s*\d+[.)]\s)")
# "doesn't", "don’t", "won't": the "n't" of a negated verb, with a straight or a curly apostrophe ("wo" and "ca" are
# left of "won't" and "can't", both too short to be content words)
_CONTRACTION = re.compile(r"n['\u2019]t\b", re.IGNORECASE)
MARKER = re.compile(r"\s*\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]")
STOP = frozenset(
    "a an the and or but of to in on at by for from with as is are was were be been being it its this that these "
    "those there their they he she his her him we you your i me my our what which who whom whose when where why how "
    "does do did has have had not no yes can could would should will shall may might must also than then so such "
    "very about into over after before under between during each every some any more most other only own same just "
    "both few up down out according passage passages text knowledge base answer question says said document "
    "documents".split())
GENERIC_NAMES = frozenset({"The", "A", "An", "It", "This", "That", "In", "On", "According", "Yes", "No", "I",
                           "There", "These", "Those", "He", "She", "They", "We", "You", "Her", "His", "Its", "To",
                           "As", "At", "By", "For", "From", "If", "When", "What", "Who", "How", "Passage", "Answer"})


def normalise(text: str) -> str:
    """Lower case, NFKC, "n't" as " not" (straight or curly apostrophe), thousands separators dropped, punctuation to
    spaces, single spaces.

    Example:
        >>> normalise("It doesn’t reach 1,340 °C")
        'it does not reach 1340 c'
    """
    text = _CONTRACTION.sub(" not", unicodedata.normalize("NFKC", text).lower())
    text = re.sub(r"(?<=\d)[,\u202f\u00a0](?=\d{3}\b)", "", text)
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def contains(haystack: str, needle: str) -> bool:
    """True when the normalised ``needle`` occurs in the normalised ``haystack`` on word boundaries."""
    needle = normalise(needle)
    return bool(needle) and f" {needle} " in f" {normalise(haystack)} "


def content_words(text: str) -> list[str]:
    """Distinct content words of ``text`` in order (3+ letters or any number, not stop words), normalised."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(normalise(text)):
        if word not in STOP and (len(word) > 2 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def numbers(text: str) -> list[str]:
    """The numbers written in ``text`` ("1,340", "06:40" gives "06" and "40"), in order."""
    return [n.rstrip(".,") for n in _NUMBER.findall(text)]


def names(text: str) -> list[str]:
    """Capitalised spans that are not just a sentence's first word ("Rhona Callister", "MV Saltwren")."""
    out = []
    for match in _NAME.finditer(text):
        words = [w for w in match.group(0).split() if w not in GENERIC_NAMES]
        if not words:
            continue
        first_of_sentence = match.start() == 0 or text[: match.start()].rstrip().endswith((".", "!", "?", ":"))
        if first_of_sentence and len(words) == 1 and words[0] == match.group(0).split()[0]:
            continue  # "Firings are planned ..." - an ordinary word that starts a sentence
        out.append(" ".join(words))
    return list(dict.fromkeys(out))


def strip_markers(text: str) -> str:
    """``text`` without ``[n]`` citation markers."""
    return MARKER.sub("", text).strip()


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """Character spans of the sentences (and list items) of ``text``, stripped of surrounding white space."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end("tail") if match.group("tail") is not None else match.start()
        yield from _stripped(text, start, end)
        start = match.end()
    yield from _stripped(text, start, len(text))


def _stripped(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        yield start + lead, start + len(piece.rstrip())


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order.

    Example:
        >>> split_sentences("It reaches 1,340 °C. A firing takes 31 hours.")
        ['It reaches 1,340 °C.', 'A firing takes 31 hours.']
    """
    return [text[s:e] for s, e in sentence_spans(text)]


STEM = 4  # words compare on their first letters: "reach"/"reaches", "founded"/"founder", "geology"/"geologist"
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
MONTH_WORDS = frozenset("january february march april may june july august september october november december "
                        "jan feb mar apr jun jul aug sep sept oct nov dec".split())
_MONTH = r"(?P<{g}>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DAY = r"(?P<{g}>[0-3]?\d)(?:st|nd|rd|th)?"
_DATE = re.compile(
    r"\b(?:" + _DAY.format(g="d1") + r"\s+(?:of\s+)?" + _MONTH.format(g="m1") + r",?\s+(?P<y1>\d{4})"  # 30 June 1975
    r"|" + _MONTH.format(g="m2") + r"\s+" + _DAY.format(g="d2") + r",?\s+(?P<y2>\d{4})"  # June 30th, 1975
    r"|(?P<a>[0-3]?\d)[/.](?P<b>[0-3]?\d)[/.](?P<y3>\d{4})"  # 06/30/1975 or 30.06.1975
    r"|(?P<y4>\d{4})-(?P<m4>[01]\d)-(?P<d4>[0-3]\d)"  # 1975-06-30
    r"|" + _MONTH.format(g="m5") + r"\s+(?:of\s+)?(?P<y5>\d{4})"  # June 1975
    r")\b", re.IGNORECASE)


def dates(text: str) -> list[frozenset[str]]:
    """Each date written in ``text`` as the set of ISO readings it may mean ("06/05/1975": 5 June or 6 May).

    A month and year without a day reads as ``YYYY-MM``. Bare years are numbers, not dates (see ``numbers``).

    Example:
        >>> dates("born on June 30th, 1975") == dates("born 30 June 1975") == dates("06/30/1975")
        True
    """
    return [readings for _, readings in date_mentions(text)]


def date_mentions(text: str) -> list[tuple[str, frozenset[str]]]:
    """``(as written, ISO readings)`` of each date in ``text`` (see ``dates``)."""
    out = []
    for m in _DATE.finditer(text):
        g = {k: v for k, v in m.groupdict().items() if v}
        if "y1" in g or "y2" in g:
            n = "1" if "y1" in g else "2"
            readings = {_iso(g[f"y{n}"], _MONTHS[g[f"m{n}"].lower()[:3]], g[f"d{n}"])}
        elif "y3" in g:
            a, b = int(g["a"]), int(g["b"])
            readings = {_iso(g["y3"], a, b), _iso(g["y3"], b, a)}
        elif "y4" in g:
            readings = {_iso(g["y4"], int(g["m4"]), g["d4"])}
        else:
            readings = {f"{g['y5']}-{_MONTHS[g['m5'].lower()[:3]]:02d}"}
        readings.discard("")
        if readings:
            out.append((m.group(0), frozenset(readings)))
    return out


def _iso(year: str, month: int, day: str | int) -> str:
    """``YYYY-MM-DD``, or '' when the month or day cannot be one."""
    month, day = int(month), int(day)
    return f"{year}-{month:02d}-{day:02d}" if 1 <= month <= 12 and 1 <= day <= 31 else ""


def same_date(a: frozenset[str], b: frozenset[str]) -> bool:
    """True when two date mentions can mean the same day (or month, when one of them names no day)."""
    return any(x == y or x.startswith(y + "-") or y.startswith(x + "-") for x in a for y in b)


def held_date(date: frozenset[str], held: Sequence[frozenset[str]]) -> bool:
    """True when one of the dates ``held`` (``dates`` of a text) can be ``date``."""
    return any(same_date(date, h) for h in held)


def without_dates(text: str) -> tuple[str, list[tuple[str, frozenset[str]]]]:
    """``text`` with its dates blanked (a date's day and year are the date's, not numbers or words of their own),
    and the ``date_mentions`` taken out."""
    mentions = date_mentions(text)
    for written, _ in mentions:
        text = text.replace(written, " ")
    return text, mentions
