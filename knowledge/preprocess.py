"""Normalise document text, split it into sentences with spaCy, and pack sentences into passages.

Budgets are measured with the embedding model's own tokenizer (``count_tokens`` is batched, e.g.
``SentenceTransformerEmbedder.count_tokens_batch``). Passages never cross a block (a Markdown section, a PDF
page); consecutive passages of one block share ``overlap_sentences`` sentences. Passage ``start``/``end`` are
character offsets into the *normalised* document, ``normalize_document(doc).text``.

Example:
    >>> pre = Preprocessor(PreprocessConfig(max_tokens=64), embedder.count_tokens_batch)
    >>> passages = pre.chunk_documents(documents)
    >>> vectors = embedder.embed([pre.embedding_text(p) for p in passages])
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from knowledge.config import PreprocessConfig
from rag.errors import ConfigError
from rag.types import Document, Passage, content_hash

CountTokens = Callable[[list[str]], list[int]]

# regex passes rather than str.translate: a dict-based translate costs ~0.1 s per MB, these ~0.01 s
_NEWLINES = re.compile("\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# control characters (tab and newline are whitespace), soft hyphen, zero-width space, word joiner, BOM
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\u2060\ufeff]")
_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")  # runs, or any whitespace but " " and "\n" (single spaces stay)
_LINE_EDGES = re.compile(r" *\n *")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_BLANK_LINES = re.compile(r"\n{3,}")
_PARAGRAPH = re.compile(r"[^\n]+(?:\n[^\n]+)*")
_WORD = re.compile(r"\S+")
# WordPiece turns any word over 100 characters into one [UNK] token, so a 900,000-character line without spaces
# would "count" as 1 token: counting and embedding see such runs cut into 100-character words instead
_LONG_RUN = re.compile(r"\S{100}(?=\S)")
_COUNT_BATCH = 4096
_CHECK = 64  # chunks re-counted to confirm that sentence counts add up


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one): character span in the document text and its token count."""

    start: int
    end: int
    n_tokens: int
    # "measured": n_tokens counted on this very text; "summed": the sum over whitespace-separated pieces;
    # "glued": a sum that includes pieces of one word cut apart (always re-counted)
    count: str = "measured"


def pack(counts: Sequence[int], budget: int, overlap: int, paragraphs: Sequence[bool] = ()) -> list[tuple[int, int]]:
    """Greedily group consecutive units into ``[a, b)`` ranges whose counts sum to at most ``budget``.

    Each range after the first repeats up to ``overlap`` units of the previous one, as many as leave room for
    at least one new unit. A unit larger than the budget on its own gets a range of its own. ``paragraphs[i]``
    marks a unit that starts a paragraph (a list item, a table row): a paragraph that would straddle two ranges
    but fits in one starts the next range instead, once the current one holds a quarter of the budget, so a row
    or an option's description is never cut from its name.

    Example:
        >>> pack([50, 50, 30, 30], 120, 0)
        [(0, 2), (2, 4)]
        >>> pack([40, 30, 30, 40, 30], 120, 0, [True, False, False, True, False])
        [(0, 3), (3, 5)]
    """
    ranges: list[tuple[int, int]] = []
    starts = [i for i, first in enumerate(paragraphs) if first] + [len(counts)]
    a, n = 0, len(counts)
    while a < n:
        b, total = a, 0
        while b < n and (b == a or total + counts[b] <= budget):
            if b > a and total >= budget // 4 and b < len(paragraphs) and paragraphs[b]:
                size = sum(counts[b:starts[bisect.bisect_right(starts, b)]])
                if total + size > budget >= size:  # the paragraph fits in a range of its own, not in this one
                    break
            total += counts[b]
            b += 1
        ranges.append((a, b))
        if b >= n:
            break
        a = max(b - overlap, a + 1)
        while a < b and sum(counts[a:b]) + counts[b] > budget:
            a += 1
    return ranges


class Preprocessor:
    """Normalises documents and chunks them into passages under a token budget.

    Example:
        >>> pre = Preprocessor(PreprocessConfig(), lambda texts: [len(t.split()) for t in texts])
        >>> [p.text for p in pre.chunk(Document("d", "d", "T", (Block("One. Two."),)))]
        ['One. Two.']
    """

    def __init__(self, config: PreprocessConfig, count_tokens: CountTokens) -> None:
        self.config = config
        self._count_tokens = count_tokens

    def count_tokens(self, texts: list[str]) -> list[int]:
        """``count_tokens`` in slices, so a huge file never holds every sentence's encoding at once; each text is
        counted as the embedder will see it (``breakable``)."""
        texts = [breakable(t) for t in texts]
        return [n for i in range(0, len(texts), _COUNT_BATCH) for n in self._count_tokens(texts[i:i + _COUNT_BATCH])]

    @property
    def nlp(self) -> Any:  # noqa: ANN401 - spacy.Language, imported lazily
        return _pipeline(self.config.spacy_model)

    @property
    def extracts_entities(self) -> bool:
        return self.config.extract_entities and any(self.nlp.has_pipe(p) for p in ("ner", "entity_ruler"))

    # ---- normalisation ----------------------------------------------------------------------------------------

    @staticmethod
    def normalize(text: str) -> str:
        """NFKC, no control characters or soft hyphens, single spaces, paragraph breaks kept, hyphenation undone."""
        text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", _NEWLINES.sub("\n", text)))
        text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", text))
        text = _HYPHEN_BREAK.sub("", text)  # "infor-\nmation" -> "information"
        return _BLANK_LINES.sub("\n\n", text).strip()

    def normalize_document(self, doc: Document) -> Document:
        """The document with normalised blocks; blocks left empty are dropped. Passage offsets refer to its text."""
        blocks = (replace(b, text=self.normalize(b.text)) for b in doc.blocks)
        return replace(doc, blocks=tuple(b for b in blocks if b.text))

    # ---- chunking -----------------------------------------------------------------------------------------------

    def chunk(self, doc: Document) -> list[Passage]:
        """Passages of one document, in reading order."""
        return self.chunk_documents([doc])

    def chunk_documents(self, docs: Sequence[Document]) -> list[Passage]:
        """Passages of many documents; sentence splitting and token counting run in batches."""
        docs = [self.normalize_document(d) for d in docs]
        jobs = [(d, b, start) for d, doc in enumerate(docs) for b, start in enumerate(_block_starts(doc))]
        sentences, entities, starts = self._sentences(docs, jobs)
        texts = [doc.text for doc in docs]  # Document.text joins its blocks on every access
        units = self._measure(texts, sentences)
        chunks = [(d, b, _merge(us[a:z])) for (d, b), us in units.items()
                  for a, z in pack([u.n_tokens for u in us], self.config.max_tokens, self.config.overlap_sentences,
                                   [(d, u.start) in starts for u in us])]
        chunks = self._verify(texts, chunks)
        return self._passages(docs, texts, chunks, entities)

    def _sentences(self, docs: list[Document], jobs: list[tuple[int, int, int]]) -> tuple[dict, dict, set]:
        """Sentence spans (document offsets) per ``(doc, block)``, paragraph breaks always ending one; entities per
        document; and the ``(doc, offset)`` where each paragraph's first sentence starts."""
        paragraphs = [(d, b, start + m.start(), m.group()) for d, b, start in jobs
                      for m in _PARAGRAPH.finditer(docs[d].blocks[b].text)]
        starts: set[tuple[int, int]] = set()
        sentences: dict[tuple[int, int], list[tuple[int, int]]] = {(d, b): [] for d, b, _ in jobs}
        entities: dict[int, list[tuple[int, str, str]]] = {}
        with_entities = self.extracts_entities
        texts = (text for *_, text in paragraphs)
        for (d, b, offset, text), parsed in zip(paragraphs, self.nlp.pipe(texts, batch_size=256)):
            first = len(sentences[(d, b)])
            for sent in parsed.sents:
                span = _trim(text, sent.start_char, sent.end_char)
                if span:
                    sentences[(d, b)].append((offset + span[0], offset + span[1]))
            if len(sentences[(d, b)]) > first:
                starts.add((d, sentences[(d, b)][first][0]))
            if with_entities:
                entities.setdefault(d, []).extend((offset + e.start_char, e.text, e.label_) for e in parsed.ents)
        return sentences, entities, starts

    def _measure(self, texts: list[str], sentences: dict) -> dict[tuple[int, int], list[_Unit]]:
        """Count tokens of every sentence in one batch; split sentences over the budget into pieces."""
        keys = [(key, span) for key, spans in sentences.items() for span in spans]
        counts = self.count_tokens([texts[key[0]][s:e] for key, (s, e) in keys])
        units: dict[tuple[int, int], list[_Unit]] = {key: [] for key in sentences}
        for ((d, b), (s, e)), n in zip(keys, counts):
            if n <= self.config.max_tokens:
                units[(d, b)].append(_Unit(s, e, n))
            else:
                units[(d, b)].extend(self._split_long(texts[d], s, e))
        return {key: us for key, us in units.items() if us}

    def _split_long(self, text: str, start: int, end: int) -> list[_Unit]:
        """Pieces of an over-long sentence, cut at word boundaries (inside a word only when it alone is too long)."""
        words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]
        counts = self.count_tokens([text[s:e] for s, e in words])
        pieces: list[_Unit] = []
        for (s, e), n in zip(words, counts):
            parts = [_Unit(s, e, n)] if n <= self.config.max_tokens else self._split_word(text, s, e, n)
            for part in parts:
                if pieces and pieces[-1].n_tokens + part.n_tokens <= self.config.max_tokens:
                    pieces[-1] = _merge([pieces[-1], part])
                else:
                    pieces.append(part)
        return pieces

    def _split_word(self, text: str, start: int, end: int, n_tokens: int) -> list[_Unit]:
        """Character pieces of a single word that is over the budget on its own (a URL, base64, a gene sequence)."""
        budget = self.config.max_tokens
        size = max(1, (end - start) * budget // (n_tokens + 1))
        while True:
            cuts = list(range(start, end, size))
            spans = [(c, min(c + size, end)) for c in cuts]
            counts = self.count_tokens([text[s:e] for s, e in spans])
            if max(counts) <= budget or size == 1:
                return [_Unit(s, e, n, "glued") for (s, e), n in zip(spans, counts)]
            size = max(1, math.floor(size * 0.8))

    def _verify(self, texts: list[str], chunks: list[tuple[int, int, _Unit]]) -> list[tuple[int, int, _Unit]]:
        """Make every chunk's count the tokenizer's count of the chunk as a whole, and re-fit any chunk over budget.

        Sums of sentence counts equal whole-text counts for tokenizers that split on whitespace first (WordPiece,
        most BPEs): a sample of chunks is re-counted, and only if any differs is every chunk re-counted.
        """
        summed = [i for i, (*_, u) in enumerate(chunks) if u.count == "summed"]
        todo = sorted(set(summed[:_CHECK]) | {i for i, (*_, u) in enumerate(chunks) if u.count == "glued"})
        counts = dict(zip(todo, self.count_tokens([_text(texts, chunks[i]) for i in todo])))
        if any(counts[i] != chunks[i][2].n_tokens for i in summed[:_CHECK]):
            counts = dict(enumerate(self.count_tokens([_text(texts, c) for c in chunks])))
        fixed = []
        for i, (d, b, unit) in enumerate(chunks):
            n = counts.get(i, unit.n_tokens)
            if n <= self.config.max_tokens:
                fixed.append((d, b, _Unit(unit.start, unit.end, n)))
            else:
                fixed.extend((d, b, u) for u in self._split_long(texts[d], unit.start, unit.end))
        return fixed

    def _passages(self, docs: list[Document], texts: list[str], chunks: list[tuple[int, int, _Unit]],
                  entities: dict) -> list[Passage]:
        passages: list[Passage] = []
        order: dict[int, int] = {}
        for d, b, unit in chunks:
            doc, block = docs[d], docs[d].blocks[b]
            text = texts[d][unit.start:unit.end]
            meta = {**doc.metadata, **({"section": block.section} if block.section else {}),
                    **({"page": block.page} if block.page is not None else {})}
            if d in entities:
                meta["entities"] = _entities_in(entities[d], unit.start, unit.end)
            order[d] = order.get(d, -1) + 1
            passages.append(Passage(content_hash(text), text, doc.doc_id, doc.source, doc.title, order[d],
                                    unit.start, unit.end, unit.n_tokens, meta))
        return passages

    # ---- what the embedder sees ---------------------------------------------------------------------------------

    def embedding_text(self, passage: Passage) -> str:
        """``"Title. Section: passage text"`` (title and section as configured, each clipped to stay short)."""
        parts = []
        if self.config.embed_title and passage.title:
            title = _clip(passage.title, 120)
            parts.append(title if title[-1] in ".!?:…" else title + ".")
        section = passage.metadata.get("section")
        if self.config.embed_section and section:
            parts.append(_clip(str(section), 80) + ":")
        return " ".join([*parts, breakable(passage.text)])


def blank_nlp() -> Any:  # noqa: ANN401
    """``spacy.blank("en")`` + sentencizer, loaded once per process (shared by chunking and distillation)."""
    return _pipeline("blank")


def breakable(text: str) -> str:
    """``text`` with a space after every 100 characters of a longer whitespace-free run (see ``_LONG_RUN``)."""
    return _LONG_RUN.sub(r"\g<0> ", text) if len(text) > 100 else text


@lru_cache(maxsize=4)
def _pipeline(name: str) -> Any:  # noqa: ANN401
    """The spaCy pipeline, loaded once per process: "blank" is ``spacy.blank("en")`` + sentencizer."""
    import spacy  # noqa: PLC0415 - heavy import

    if name == "blank":
        nlp = spacy.blank("en")
    else:
        try:
            nlp = spacy.load(name)
        except OSError:
            raise ConfigError(
                f"preprocess.spacy_model: spaCy pipeline '{name}' is not installed; install it with "
                f"`python -m spacy download {name}` or set spacy_model = \"blank\""
            ) from None
    if not any(nlp.has_pipe(p) for p in ("parser", "senter", "sentencizer")):
        nlp.add_pipe("sentencizer")
    nlp.max_length = max(nlp.max_length, 10_000_000)
    return nlp


def _merge(units: Sequence[_Unit]) -> _Unit:
    """One unit spanning ``units``, with the sum of their counts."""
    if len(units) == 1:
        return units[0]
    glued = any(u.count == "glued" for u in units)
    return _Unit(units[0].start, units[-1].end, sum(u.n_tokens for u in units), "glued" if glued else "summed")


def _text(texts: list[str], chunk: tuple[int, int, _Unit]) -> str:
    return texts[chunk[0]][chunk[2].start:chunk[2].end]


def _block_starts(doc: Document) -> list[int]:
    """Offset of each block in ``doc.text`` (blocks are joined by a blank line)."""
    starts, offset = [], 0
    for block in doc.blocks:
        starts.append(offset)
        offset += len(block.text) + 2
    return starts


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without surrounding whitespace, or None when nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _entities_in(entities: list[tuple[int, str, str]], start: int, end: int) -> list[list[str]]:
    seen: dict[tuple[str, str], None] = {}
    for offset, text, label in entities:
        if start <= offset < end:
            seen.setdefault((text, label))
    return [list(key) for key in seen]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"
