"""Closed-book answers from the distilled adapter, as the product serves them: where it may answer, and which of its
answers stand.

A 135M adapter lends what it learnt: taught "Ana Vel won the Halvard Prize", it answers "the Halvard Prize" to
"Which prize did Bo Kran win?" too (the look-alike bench: 159 to 195 of 620 closed-book questions about authors it
was never taught; the base model 0), and taught two look-alike facts it swaps them (3 of 30 asked questions after a
10-fact round). With ``generation.adapter_subjects``, a question that names a subject (a name, quoted title, number
or date) goes to the adapter only when a passage it learnt meets those constraints (the teacher's own test,
``knowledge.distill.verify.missing``), and its answer stands only when it states nothing that belongs to another
subject (``vouched``); otherwise the base model answers, which never states the adapter's facts.
"""

from __future__ import annotations

from typing import Any

from rag.grounding.ground import cut_answer
from rag.text import contains
from rag.types import Generator, Hit

# the passages the adapter learnt about a question's subject, and the rest it learnt
Subject = tuple[list[str], list[str]]


class ClosedBook:
    """The closed-book side of a ``QAPipeline``: its settings, KB and models are read from the pipeline.

    Example:
        >>> model, text = qa.closed_book.answer("How long is the Orlen bridge?")
        >>> model is qa.closed_generator  # the adapter learnt the bridge, and its answer checks out
        True
    """

    def __init__(self, pipe: Any) -> None:  # noqa: ANN401 - pipelines.qa.QAPipeline (which imports this module)
        self.pipe = pipe
        self._cache: tuple[str, list[str] | None] | None = None

    def answer(self, question: str) -> tuple[Generator, str | None]:
        """The model that answers ``question`` closed-book and, when it is the adapter answering about a subject it
        learnt, its vouched-for answer (None: the model writes it, streamed). ``rag ask``, ``rag serve`` and
        ``rag eval --adapter`` answer through this; ``bench/distill.py`` through ``model`` and ``vouched``."""
        pipe = self.pipe
        subject = self._subject(question)
        if subject is None:
            return pipe.closed_generator, None  # nothing to vouch for: streamed as it is written
        if not subject[0]:
            return pipe.generator, None
        # the answer as shown: its first sentences (``answer.max_sentences``), which a short budget holds
        budget = min(64, pipe.settings.generation.max_new_tokens)
        text = self._shown(pipe.closed_generator.generate(pipe.builder.build_closed_book(question).text,
                                                          max_new_tokens=budget))
        return (pipe.closed_generator, text) if self._vouches(question, text, subject) else (pipe.generator, None)

    def model(self, question: str) -> Generator:
        """The adapter, unless the question names a subject that no passage the adapter learnt meets: the base model."""
        subject = self._subject(question)
        return self.pipe.closed_generator if subject is None or subject[0] else self.pipe.generator

    def vouched(self, question: str, answer: str) -> bool:
        """False when ``question`` names a subject and ``answer`` (as shown: its first ``answer.max_sentences``
        sentences) states what belongs to another: a name, title or number that no passage the adapter learnt
        about that subject holds, or a word only another learnt passage holds (``verify.foreign``), or, held by
        the subject's passage, a parallel clause's answer (``verify.off_topic``: her father's job for her mother's).
        Its own words ("writes about geology", "I do not know.") lend nothing and stand."""
        subject = self._subject(question)
        return subject is None or self._vouches(question, self._shown(answer), subject)

    def routed(self, question: str, top: Hit) -> str | None:
        """``auto`` routing: the adapter's answer when the top passage meets the question's constraints and the
        answer passes the teacher's test on it (``verify.fault``); else None (the ask goes to RAG).

        A short closed-book prompt costs a fraction of the RAG prompt's prefill, and checking the answer against
        the retrieved passage keeps routed answers as reliable as the passage itself.
        """
        from knowledge.distill.facts import key_spans
        from knowledge.distill.teach import haystack
        from knowledge.distill.verify import fault, unmet

        pipe = self.pipe
        # the passage must be about what the question asks (not a sibling's), before it can vouch for an answer
        if unmet(question, haystack(top.passage)):
            return None
        text = pipe.closed_generator.generate(pipe.builder.build_closed_book(question).text,
                                              max_new_tokens=min(48, pipe.settings.generation.max_new_tokens))
        return text if fault(question, text, key_spans(text, question), top.passage.text) is None else None

    def _subject(self, question: str) -> Subject | None:
        """The learnt passages that meet what ``question`` names its subject by, and the other learnt passages; None
        when nothing is guarded (the flag off, no separate adapter, no learnt passage in this KB, no subject named:
        general ability, which the gate measured)."""
        pipe = self.pipe
        if not pipe.settings.generation.adapter_subjects or pipe.closed_generator is pipe.generator:
            return None
        learnt = self._learnt()
        if learnt is None:
            return None
        from knowledge.distill.verify import constraints, missing

        found = constraints(question)
        if not (found["names"] or found["titles"] or found["numbers"] or found["dates"]):
            return None
        own = [text for text in learnt if not missing(found, text)]
        return own, [text for text in learnt if text not in own]

    def _shown(self, answer: str) -> str:
        """``answer`` as shown: its first ``answer.max_sentences`` sentences."""
        return cut_answer(answer, self.pipe.settings.answer.max_sentences, final=True)[0]

    def _vouches(self, question: str, shown: str, subject: Subject) -> bool:
        from knowledge.distill.facts import key_spans
        from knowledge.distill.verify import answer_kind, foreign, off_topic

        own, others = subject
        claims = shown.rstrip()
        if claims[-1:].isalnum():  # cut by the token budget: its last word ("born on 14 June 19") claims nothing
            claims = claims.rsplit(None, 1)[0] if " " in claims else ""
        spans = key_spans(claims, question)
        if foreign(claims, spans, own, others, self.pipe.kb.bm25.rare_word):
            return False
        held = [span for span in spans if any(contains(text, span) for text in own)]
        if not held or answer_kind(question) == "person":  # a person is the passage's subject, not one clause's
            return True
        return any(not off_topic(question, held, text) for text in own if all(contains(text, span) for span in held))

    def _learnt(self) -> list[str] | None:
        """What the closed-book adapter learnt: its passages' titles and texts (None: no manifest, no guard)."""
        path = getattr(self.pipe.closed_generator, "adapter_path", None)
        if not path:
            return None
        if self._cache is None or self._cache[0] != path:
            from knowledge.distill.adapters import learnt_passages
            from knowledge.distill.teach import haystack

            ids = learnt_passages(path)
            found = self.pipe.kb.store.get_passages(ids) if ids else {}
            # none of them in this KB (an adapter trained on another one): nothing to judge questions by
            self._cache = (path, [haystack(p) for p in found.values()] if found else None)
        return self._cache[1]
