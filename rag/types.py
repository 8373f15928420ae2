"""Shared types of the live query path, and the protocols of the stages that may be swapped.

Stages pass these objects, not loose dicts. Everything here is immutable (frozen dataclasses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


def content_hash(text: str, n: int = 16) -> str:
    """Stable id of a piece of text: the first ``n`` hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


@dataclass(frozen=True)
class Block:
    """A run of text inside a document that shares location metadata (a markdown section, a PDF page)."""

    text: str
    section: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """One logical document produced by a loader. A file is one document; a JSONL file yields one per line.

    ``doc_id`` is unique within a knowledge base: the resolved file path, or ``path#record-id`` for JSONL records.
    ``text`` is the blocks joined by a blank line; passage character offsets refer to it.
    """

    doc_id: str
    source: str
    title: str
    blocks: tuple[Block, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class Passage:
    """A chunk of a document small enough to embed. ``id`` is the content hash of ``text``.

    ``start``/``end`` are character offsets into ``Document.text``; ``metadata`` holds the section, page,
    entities and any user metadata (tags, dates) of the document.
    """

    id: str
    text: str
    doc_id: str
    source: str
    title: str = ""
    order: int = 0
    start: int = 0
    end: int = 0
    n_tokens: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """Short place of the passage: ``file.md § Section``, ``file.pdf p. 3`` or ``file.jsonl#id``."""
        where = self.doc_id.replace("\\", "/").rsplit("/", 1)[-1]
        if self.metadata.get("page") is not None:
            where += f" p. {self.metadata['page']}"
        if self.metadata.get("section"):
            where += f" § {self.metadata['section']}"
        return where


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and the per-retriever ranks and scores that produced it."""

    passage: Passage
    score: float
    rank: int
    scores: Mapping[str, float] = field(default_factory=dict)
    ranks: Mapping[str, int] = field(default_factory=dict)


CITATION_KINDS = ("supported", "attributed", "unsupported")


@dataclass(frozen=True)
class Citation:
    """An answer's reference to the passage that was given to the model as number ``n``.

    ``kind`` says how far to trust it: ``supported`` (the model wrote ``[n]``, or the answer quotes the passage,
    and the passage supports the sentence), ``attributed`` (no marker; the support check found this passage
    supports the sentence) or ``unsupported`` (the model wrote ``[n]`` but passage n does not support the
    sentence). ``location`` is the source path relative to the ingest root plus the section; ``span`` is the
    character range of the supporting sentence in the passage text, when one was quoted.
    """

    marker: int
    passage_id: str
    source: str
    location: str
    score: float
    kind: str = "supported"
    span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"marker": self.marker, "passage_id": self.passage_id, "source": self.source,
                "location": self.location, "score": self.score, "kind": self.kind,
                "span": list(self.span) if self.span else None}


@dataclass(frozen=True)
class Filters:
    """Metadata filters applied in dense and sparse retrieval alike.

    ``source``: a path or glob matched against the passage's source path. ``tags``: every tag must be present in
    the passage metadata ``tags``. ``date_from``/``date_to``: ISO dates compared with the metadata ``date``.
    """

    source: str | None = None
    tags: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def is_empty(self) -> bool:
        return not (self.source or self.tags or self.date_from or self.date_to)


# ---- protocols of the stages that may be swapped ---------------------------------------------------------------


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    model_id: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool = False) -> np.ndarray: ...

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


# The retrieval-side protocols (vector index with filters, sparse index, passage lookup) live next to their
# only consumer, ``rag.retrieve``.


@runtime_checkable
class Generator(Protocol):
    """A chat LLM: renders messages with its template, counts tokens, generates (optionally streaming).

    Backends (``rag.generation.backends.make_generator``): transformers, llama.cpp in process, OpenAI-compatible servers.
    ``last_stats`` describes the latest call: ``prompt_tokens``, ``completion_tokens``, ``first_token_s``,
    ``total_s``. Overrides accepted by every backend: ``max_new_tokens``, ``temperature``, ``top_p``.
    """

    model_id: str
    adapter_id: str | None
    last_stats: Mapping[str, float]

    @property
    def context_window(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def render(self, messages: Sequence[Mapping[str, str]]) -> str: ...

    def generate(self, prompt: str, **overrides: Any) -> str: ...

    def stream(self, prompt: str, **overrides: Any) -> Iterator[str]: ...

    def generate_batch(self, prompts: Sequence[str], **overrides: Any) -> list[str]: ...


@runtime_checkable
class Scorer(Protocol):
    """A generator that can also score continuations (transformers and llama.cpp; not HTTP servers)."""

    def loglikelihood(self, prompt: str, continuation: str) -> float: ...

    def choose(self, prompt: str, options: Sequence[str]) -> tuple[str, dict[str, float]]: ...


@dataclass(frozen=True)
class Answer:
    """The result of one ask: the answer text, validated citations, every retrieved hit, timings and token counts.

    ``context`` holds the hits that were injected into the prompt, in marker order (``[1]`` is ``context[0]``).
    ``invalid_markers`` lists ``[n]`` markers the model wrote that point outside the given context; they are
    dropped from ``citations``. ``path`` is ``"rag"`` (retrieval) or ``"closed"`` (closed-book).
    ``supported`` is True when every claim sentence is supported by a context passage (None: not checked);
    ``abstained`` when the answer is the abstention text; ``style`` is how the text was made (``generative``,
    ``extractive``, or ``fallback``: generated, unsupported, replaced by the extractive answer); ``query`` is the
    text retrieval used (chat's standalone question); ``grounding`` holds the scores behind the verdicts.
    """

    id: str
    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    invalid_markers: tuple[int, ...] = ()
    hits: tuple[Hit, ...] = ()
    context: tuple[Hit, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    tokens: Mapping[str, int] = field(default_factory=dict)
    model: str = ""
    adapter: str | None = None
    path: str = "rag"
    supported: bool | None = None
    abstained: bool = False
    style: str = "generative"
    query: str = ""
    grounding: Mapping[str, Any] = field(default_factory=dict)
    feedback_sink: Any = field(default=None, compare=False, repr=False)

    def to_dict(self, passage_text: bool = True) -> dict[str, Any]:
        """The JSON shape of the CLI's ``--json`` and the HTTP API (one place, so both stay the same)."""
        def hit(h: Hit) -> dict[str, Any]:
            out = {"passage_id": h.passage.id, "source": h.passage.source, "location": h.passage.location,
                   "rank": h.rank, "score": h.score, "scores": dict(h.scores)}
            return out | ({"text": h.passage.text} if passage_text else {})

        return {
            "id": self.id, "question": self.question, "query": self.query or self.question, "answer": self.text,
            "path": self.path, "style": self.style, "supported": self.supported, "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations], "invalid_markers": list(self.invalid_markers),
            "hits": [hit(h) for h in self.hits], "grounding": dict(self.grounding), "timings": dict(self.timings),
            "tokens": dict(self.tokens), "model": self.model, "adapter": self.adapter,
        }

    def feedback(self, good: bool, correction: str | None = None) -> None:
        """Store human feedback on this answer in the knowledge base it came from."""
        if self.feedback_sink is None:
            raise RuntimeError("this answer was not produced by a pipeline with a knowledge base; no feedback sink")
        self.feedback_sink(self.id, good, correction)
