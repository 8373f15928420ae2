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
from collections.abc import Iterator

_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]*)*")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# a sentence ends after . ! ? (with closing quotes and any "[n]" markers written after it) before a capital,
# a digit or a "[n]" that opens the next one; blank lines and list items end one too
_SENTENCE_END = re.compile(r"(?<=[.!?])(?P<tail>(?:\s*\[\d+(?:\s*[-–,]\s*\d+)*\])*[\"')\]]*)\s+(?=[\"'(]?[A-Z0-9])"
                           r"|\n\s*\n|\n(?=\s*[-*•]|\s*\d+[.)]\s)")
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
    """Lower case, NFKC, thousands separators dropped, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
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
