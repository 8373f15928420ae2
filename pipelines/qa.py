"""The question-answering pipeline: retrieve (dense + BM25, fused) -> pack context -> generate -> cite -> log.

Also the other tasks on the same retrieval and injection: ``summarize``, ``chat`` (follow-ups condensed into a
standalone query before retrieval) and ``translate``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from knowledge.kb import KnowledgeBase, embedding_manifest
from knowledge.log import RetrievalLog, new_answer_id
from pipelines.closed_book import ClosedBook
from pipelines.config import Settings
from rag.grounding.answering import Attempt, clean_output
from rag.grounding.cite import passage_label
from rag.embedding.embed import SentenceTransformerEmbedder
from rag.errors import ContextOverflowError, EmptyKnowledgeBaseError, IndexMismatchError
from rag.generation.backends import make_generator
from rag.grounding.ground import Evidence, Grounder
from rag.prompt import Prompt, PromptBuilder
from rag.retrieve import HybridRetriever
from rag.grounding.excerpts import excerpts
from rag.text import strip_markers
from rag.types import Answer, Filters, Generator, Hit, Passage, content_hash


class AnswerStream:
    """Iterate to receive the answer text as it is generated; ``.answer`` holds the full Answer afterwards."""

    def __init__(self, pieces: Iterator[str], finish: Any) -> None:
        self._pieces = pieces
        self._finish = finish
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        text = []
        for piece in self._pieces:
            text.append(piece)
            yield piece
        self.answer = self._finish("".join(text))


class QAPipeline:
    """Answers questions from a knowledge base with citations.

    Example:
        >>> qa = QAPipeline.from_config(Settings(), kb="kb")
        >>> answer = qa.ask("What temperature does the Velmora kiln reach?")
        >>> answer.citations[0].source
        '/.../velmora-workshop.md'
    """

    def __init__(self, settings: Settings, kb: KnowledgeBase, embedder: SentenceTransformerEmbedder,
                 generator: Generator, closed_generator: Generator | None = None) -> None:
        self.settings = settings
        self.kb = kb
        self.embedder = embedder
        self.generator = generator  # answers prompts that hold passages
        self.closed_generator = closed_generator or generator  # answers closed-book (the distilled adapter's path)
        self.builder = PromptBuilder(settings.prompt, generator, settings.generation.max_new_tokens)
        self.log = RetrievalLog(kb.store, settings.log)
        # coverage weighs question words by the KB's BM25 IDF: "Does X improve Y?" needs X and Y more than "improve"
        self.grounder = Grounder(settings.answer, embedder, idf=lambda word: self.kb.bm25.idf(word),
                                 known=lambda word: self.kb.bm25.holds(word))
        self._checked = False
        self._root: str | None = None
        self.closed_book = ClosedBook(self)  # closed-book answers: where the adapter answers, which answers stand

    @cached_property
    def retriever(self) -> HybridRetriever:
        """Built at the first retrieval (it loads the index): a closed-book ask needs none."""
        return HybridRetriever(self.settings.retrieval, self.embedder, self.kb.vectors, self.kb.bm25, self.kb.store)

    @classmethod
    def from_config(cls, settings: Settings | None = None, kb: str | Path | None = None, adapter: str | None = None,
                    embedder: SentenceTransformerEmbedder | None = None,
                    generator: Generator | None = None) -> QAPipeline:
        """Open the KB read-only, check it matches the configured embedder, and prepare (lazily) the models."""
        settings = settings or Settings()
        if kb is not None:
            settings = settings.override({"kb.path": str(kb)})
        embedder = embedder or SentenceTransformerEmbedder(settings.embedding)
        base = KnowledgeBase.open(settings.kb.path, embedding_manifest(settings), index=settings.index,
                                  retrieval=settings.retrieval)
        if base.store.counts()["passages"] == 0:
            base.close()
            raise EmptyKnowledgeBaseError(f"knowledge base {base.root} is empty; run `rag ingest PATH` first")
        adapter = adapter or settings.generation.adapter or _active_adapter(base.root)
        if generator is not None:
            return cls(settings, base, embedder, generator)
        closed = make_generator(settings.generation, adapter=adapter)
        if not adapter or settings.generation.adapter_scope == "all":
            return cls(settings, base, embedder, closed)
        # adapter_scope "closed": passages in the prompt are read by the base model (both load lazily)
        return cls(settings, base, embedder, make_generator(settings.generation, adapter=""), closed)

    def close(self) -> None:
        self.kb.close()

    # ---- asking -------------------------------------------------------------------------------------------------

    def ask(self, question: str, k: int | None = None, filters: Filters | None = None, retrieval: bool = True,
            log: bool = True, style: str | None = None) -> Answer:
        """Answer ``question``; ``retrieval=False`` answers closed-book. The ask is logged unless ``log=False``.

        ``style`` overrides ``answer.style``: ``generative``, ``extractive`` or ``auto`` (see ``rag.grounding.answering``).
        """
        stream = self.ask_stream(question, k=k, filters=filters, retrieval=retrieval, log=log, style=style)
        for _ in stream:
            pass
        assert stream.answer is not None  # set when the stream is exhausted
        return stream.answer

    def ask_stream(self, question: str, k: int | None = None, filters: Filters | None = None,
                   retrieval: bool = True, log: bool = True, style: str | None = None) -> AnswerStream:
        """Like ``ask``, but the returned stream yields text as the model writes it (``generative`` style) or,
        for the checked styles, the answer once it is checked."""
        question = _clean_question(question)
        if retrieval and not self._checked:
            check_dimension(self.kb, self.embedder)
            self._checked = True
        t0 = time.perf_counter()
        if retrieval and self.kb.refresh():  # an ingest saved new vectors or BM25 segments since the last ask
            self.retriever.dense, self.retriever.sparse = self.kb.vectors, self.kb.bm25
        hits = self.retriever.retrieve(question, k, filters) if retrieval else []
        t1 = time.perf_counter()
        path = "rag" if retrieval and self._route(hits) == "rag" else "closed"
        early = self.closed_book.routed(question, hits[0]) if path == "closed" and hits else None
        if path == "closed" and hits and early is None:
            path = "rag"  # auto mode: the adapter's answer did not check out against its passage
        prompt, evidence = self.build_prompt(question, hits) if path == "rag" else (
            self.builder.build_closed_book(question), None)
        if early is not None:  # the closed-book answer is cited to the passage it was verified against
            prompt = replace(prompt, context=(hits[0],))
        t2 = time.perf_counter()
        return self._stream(prompt, question, hits, path, log, {"retrieve_s": t1 - t0, "prompt_s": t2 - t1}, t0,
                            early, style=style, evidence=evidence)

    def build_prompt(self, question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]] = (),
                    query: str | None = None) -> tuple[Prompt, Evidence | None]:
        """The prompt with passages; under ``prompt.context_tokens`` it shows only the sentences that best answer
        the question (``rag.grounding.excerpts.excerpts``), scored on the evidence the answer is then checked
        against."""
        budget = self.settings.prompt.context_tokens
        if not budget or not hits:
            return self.builder.build(question, hits, history), None
        evidence = self.grounder.evidence(query or question, hits)
        shown = excerpts(evidence.spans, [h.passage.text for h in hits], self.grounder.scores(evidence),
                         self.generator.count_tokens, budget)
        # no sentence answers at all: the whole passages, and the checks decide (on the evidence embedded already)
        prompt = self.builder.build(question, hits, history, excerpts=shown or None)
        return prompt, evidence.within(prompt.context)

    def _route(self, hits: Sequence[Hit]) -> str:
        """``auto`` mode tries closed-book when the active adapter learnt the top hit with confidence."""
        if self.settings.generation.mode == "closed":
            return "closed"
        if self.settings.generation.mode == "auto" and hits and self.closed_generator.adapter_id:
            from knowledge.distill.adapters import AdapterRegistry

            if AdapterRegistry(self.kb.root).covers([hits[0].passage.id], self.settings.distill.auto_confidence):
                return "closed"
        return "rag"

    def _stream(self, prompt: Prompt, question: str, hits: Sequence[Hit], path: str, log: bool,
                timings: dict[str, float], t0: float, text: str | None = None, *, style: str | None = None,
                max_sentences: int | None = None, query: str | None = None,
                evidence: Evidence | None = None) -> AnswerStream:
        first: list[float] = []
        generator = self.generator
        if path == "closed" and text is not None:
            generator = self.closed_generator  # routed: verified against the retrieved passage already
        elif path == "closed":
            generator, text = self.closed_book.answer(question)
        attempt = Attempt(self.settings.answer, self.grounder if prompt.context else None, generator, prompt,
                          query or question, style=style, max_sentences=max_sentences, label=self._label, text=text,
                          evidence=evidence)
        written = text is not None  # the adapter wrote the answer already
        if written:
            attempt.style = "generative"  # a verified closed-book answer: check its citations, never replace it

        def pieces() -> Iterator[str]:
            for piece in attempt.pieces():
                if not first:
                    first.append(time.perf_counter() - t0)
                yield piece

        def finish(text: str) -> Answer:
            outcome = attempt.finish(text)
            answer = Answer(
                id=new_answer_id(), question=question, text=outcome.text, citations=outcome.citations,
                invalid_markers=outcome.invalid_markers, hits=tuple(hits), context=tuple(prompt.context),
                supported=outcome.supported, abstained=outcome.abstained, style=outcome.style,
                query=query or question, grounding=outcome.grounding,
                timings={**timings, "first_token_s": first[0] if first else 0.0,
                         "total_s": time.perf_counter() - t0},
                tokens={"prompt": prompt.n_tokens,
                        "completion": int(generator.last_stats.get("completion_tokens", 0))
                        if attempt.generated or written else 0},
                model=generator.model_id, adapter=generator.adapter_id, path=path,
                feedback_sink=self.feedback,
            )
            if log:
                self.log.record(answer)
                self._schedule_distillation()
            return answer

        return AnswerStream(pieces(), finish)

    def _schedule_distillation(self) -> None:
        """With ``distill.schedule_in_background``, a due round starts in a background process (never blocks)."""
        if self.settings.distill.schedule_in_background:
            from pipelines.distill import maybe_schedule

            maybe_schedule(self.settings)

    def feedback(self, answer_id: str, good: bool, correction: str | None = None) -> None:
        """Store a person's verdict on an answer (bad answers lower their passages' weight in distillation)."""
        self.log.feedback(answer_id, good, correction)

    # ---- other tasks on the same retrieval + injection -----------------------------------------------------------

    def summarize(self, source: str | None = None, topic: str | None = None, k: int | None = None) -> Answer:
        """Summarise one source (its passages in order) or a topic (via retrieval), with citations."""
        if (source is None) == (topic is None):
            raise ValueError("summarize needs exactly one of source or topic")
        t0 = time.perf_counter()
        if source is not None:
            hits = self._source_hits(source)
        else:
            hits = self.retriever.retrieve(_clean_question(topic or ""), k or max(self.settings.retrieval.k, 8))
        prompt = self.builder.build_summary(hits, topic)
        label = f"summary of {source or topic}"
        if prompt.truncated and source is not None:  # the source does not fit: summarise parts, then the parts
            text = self._map_reduce(hits, topic)
            prompt = replace(prompt, context=tuple(hits))
            return self._complete(prompt, label, hits, t0, text=text)
        return self._complete(prompt, label, hits, t0)

    def _map_reduce(self, hits: Sequence[Hit], topic: str | None) -> str:
        """Summaries of consecutive parts that fit the budget, then a summary of those, until one prompt fits.

        The parts' ``[n]`` markers refer to their own prompts, so they are dropped; the final text is attributed
        to the source's passages by the support check instead.
        """
        parts: Sequence[Hit] = hits
        while True:
            summaries, rest = [], list(parts)
            while rest:
                prompt = self.builder.build_summary(rest, topic)
                if not prompt.context:
                    raise ContextOverflowError("a single passage does not fit the summary prompt; lower max_new_tokens")
                summaries.append(strip_markers(clean_output(self.generator.generate(prompt.text))))
                rest = rest[len(prompt.context):]
            if len(summaries) == 1:
                return summaries[0]
            parts = [Hit(Passage(content_hash(t), t, f"summary#{i}", "summary", title=f"Part {i}"), 1.0, i)
                     for i, t in enumerate(summaries, start=1)]

    def chat(self, message: str, history: Sequence[tuple[str, str]] = (), k: int | None = None) -> Answer:
        """One turn of a conversation: the follow-up plus history is condensed into a standalone query first."""
        message = _clean_question(message)
        query = message
        if history:
            condensed = self.generator.generate(self.builder.build_condense(history, message).text).strip()
            query = condensed.splitlines()[0].strip() if condensed else message
        t0 = time.perf_counter()
        hits = self.retriever.retrieve(query, k)
        prompt, evidence = self.build_prompt(message, hits, history, query)
        answer = self._complete(prompt, message, hits, t0, style=self.settings.answer.style, query=query,
                                evidence=evidence)
        return replace(answer, question=message)

    def translate(self, text: str, target_language: str) -> Answer:
        """Translate ``text`` with the configured model (the bundled SmolLM2 is English-only: expect poor output)."""
        if not text.strip():
            raise ValueError("text to translate is empty")
        prompt = self.builder.build_translate(text, target_language)
        return self._complete(prompt, f"translate to {target_language}", [], time.perf_counter(), log=False)

    def _complete(self, prompt: Prompt, question: str, hits: Sequence[Hit], t0: float, log: bool = True,
                  style: str = "generative", query: str | None = None, text: str | None = None,
                  evidence: Evidence | None = None) -> Answer:
        """Summaries and translations are generative without a sentence cap; chat turns use the answer style."""
        cap = None if style != "generative" or query else 0
        stream = self._stream(prompt, question, hits, "rag" if hits else "closed", log, {}, t0, text,
                              style=style, max_sentences=cap, query=query, evidence=evidence)
        for _ in stream:
            pass
        assert stream.answer is not None
        return stream.answer

    def _source_hits(self, source: str) -> list[Hit]:
        path = str(Path(source).expanduser().resolve())
        ids = self.kb.store.source_passage_ids(path)
        if not ids:
            raise ValueError(f"source not in the knowledge base: {path}")
        passages = self.kb.store.get_passages(ids)
        return [Hit(passages[pid], 1.0, rank) for rank, pid in enumerate(ids, start=1)]

    def _label(self, passage: Passage) -> str:
        """The passage's source path relative to the ingest root (the folder holding every source) + section."""
        if self._root is None:
            self._root = self.kb.store.source_root() or ""
        return passage_label(passage, self._root or None)


def _clean_question(question: str) -> str:
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, not {type(question).__name__}")
    question = " ".join(question.split())
    if not question:
        raise ValueError("question is empty")
    return question


def _active_adapter(kb_root: Path) -> str | None:
    from knowledge.distill.adapters import AdapterRegistry

    path = AdapterRegistry(kb_root).active_path()
    return str(path) if path else None


def check_dimension(kb: KnowledgeBase, embedder: SentenceTransformerEmbedder) -> None:
    if embedder.dimension != kb.dimension:
        raise IndexMismatchError(
            f"{kb.root} holds {kb.dimension}-d vectors but {embedder.model_id} makes {embedder.dimension}-d ones")
