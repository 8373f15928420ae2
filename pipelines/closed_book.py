"""Closed-book answers from the distilled adapter, as the product serves them: where it may answer, and which of its
answers stand.

A 135M adapter lends what it learnt: taught "Ana Vel won the Halvard Prize", it answers "the Halvard Prize" to
"Which prize did Bo Kran win?" too (the look-alike bench: 159 to 195 of 620 closed-book questions about authors it
was never taught; the base model 0), and taught two look-alike facts it swaps them (3 of 30 asked questions after a
10-fact round). With ``generation.adapter_subjects``, a question that names a subject (a name, quoted title, number
or date; failing those, words few passages of the knowledge base hold) goes to the adapter only when a passage it learnt meets those constraints (the teacher's own test,
``knowledge.distill.verify.missing``), and its answer stands only when it states nothing that belongs to another
subject (``vouched``), or stands once its clauses that do are cut ("X is a geology author born in Rekullo on 11
December 1961" -> "X is a geology author born in Rekullo."; the adapter recites a passage's first sentence and
guesses the date it never learnt); otherwise the base model answers, which never states the adapter's facts.
"""

from __future__ import annotations

import re
from typing import Any

from rag.grounding.stopping import cut_answer
from rag.text import contains, sentence_spans
from rag.types import Generator, Hit

# the passages the adapter learnt about a question's subject, and the rest it learnt
Subject = tuple[list[str], list[str]]
# where a sentence may end early: at a comma or semicolon, or before a preposition or conjunction that opens a
# clause ("... born in Rekullo | on 11 December 1961", "... won the Golden Key Award | in 1998"); not at a colon
# ("According to Bralo Vokave: ..." alone answers nothing)
_CLAUSE_END = re.compile(r"[,;](?=\s)|\s+(?=(?:on|in|at|and|with|from|since|for|after|before|during|who|which|"
                         r"while|but)\b)")
_DANGLING = re.compile(r"(?:\s+(?:born|was|were|is|are|the|a|an|of|by|to|as))+\s*$")


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
        text = self._vouched(question, self.shown(pipe.closed_generator.generate(
            pipe.builder.build_closed_book(question).text, max_new_tokens=budget)), subject)
        return (pipe.closed_generator, text) if text is not None else (pipe.generator, None)

    def model(self, question: str) -> Generator:
        """The adapter, unless the question names a subject that no passage the adapter learnt meets: the base model."""
        subject = self._subject(question)
        return self.pipe.closed_generator if subject is None or subject[0] else self.pipe.generator

    def vouched(self, question: str, answer: str) -> str | None:
        """``answer`` as shown (its first ``answer.max_sentences`` sentences), or its longest leading sentences or
        clauses that state nothing belonging to another subject; None when no such part states a fact of the
        question's subject (the base model answers). Belonging to another: a name, title or number that no
        passage the adapter learnt about that subject holds, or a word only another learnt passage holds
        (``verify.foreign``), or, held by the subject's passage, a parallel clause's answer (``verify.off_topic``:
        her father's job for her mother's). Its own words ("writes about geology", "I do not know.") lend nothing
        and stand whole; a question that names no subject has nothing to lend."""
        subject = self._subject(question)
        shown = self.shown(answer)
        return shown if subject is None else self._vouched(question, shown, subject)

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
        text = self._first_sentence(pipe.builder.build_closed_book(question).text,
                                    min(48, pipe.settings.generation.max_new_tokens))
        return text if fault(question, text, key_spans(text, question), top.passage.text) is None else None

    def _first_sentence(self, prompt: str, max_new_tokens: int) -> str:
        """The adapter's answer up to its first complete sentence: a taught fact is one sentence, and what the
        adapter adds after it costs decode time and is no fact the passage can vouch for."""
        text = ""
        for piece in self.pipe.closed_generator.stream(prompt, max_new_tokens=max_new_tokens):
            text += piece
            spans = list(sentence_spans(text))
            if len(spans) > 1:  # the next sentence has begun: the first is complete
                return text[spans[0][0]:spans[0][1]]
        return text.strip()

    def _subject(self, question: str) -> Subject | None:
        """The learnt passages that meet what ``question`` names its subject by, and the other learnt passages; None
        when nothing is guarded (the flag off, no separate adapter, no learnt passage in this KB, no subject named:
        general ability, which the gate measured). A subject is named by names, quoted titles, numbers and dates;
        failing those, by the question's rare words (``KB.bm25.rare_word``: few passages hold them)."""
        pipe = self.pipe
        if not pipe.settings.generation.adapter_subjects or pipe.closed_generator is pipe.generator:
            return None
        learnt = self._learnt()
        if learnt is None:
            return None
        from knowledge.distill.verify import constraints, missing

        found = constraints(question, self.pipe.kb.bm25.rare_word)
        if found["names"] or found["titles"] or found["numbers"] or found["dates"]:
            found["words"] = []  # "What temperature does the Velmora kiln reach?": its passage says "degrees"
        elif not found["words"]:
            return None
        # else a subject named without capitals ("where was nendan mirdrabra born?") or by what it is ("the geology
        # author"): the knowledge base's rare words stand for its names
        own = [text for text in learnt if not missing(found, text)]
        return own, [text for text in learnt if text not in own]

    def shown(self, answer: str) -> str:
        """``answer`` as shown: its first ``answer.max_sentences`` sentences."""
        return cut_answer(answer, self.pipe.settings.answer.max_sentences, final=True)[0]

    def _vouched(self, question: str, shown: str, subject: Subject) -> str | None:
        """``shown`` when it lends nothing; else its longest head (whole sentences, then the first sentence's
        leading clauses) that lends nothing and states a fact of the kind asked that the subject's passages hold;
        else None."""
        claims = shown.rstrip()
        if claims[-1:].isalnum():  # cut by the token budget: its last word ("born on 14 June 19") claims nothing
            claims = claims.rsplit(None, 1)[0] if " " in claims else ""
        if self._lends(question, claims, subject) is not True:
            return shown
        ends = [end for _, end in sentence_spans(claims)][:-1]
        first = ends[0] if ends else len(claims)
        ends += [m.start() for m in _CLAUSE_END.finditer(claims, 0, first)]
        from knowledge.distill.facts import key_spans
        from knowledge.distill.verify import fits_kind

        for end in sorted(set(ends), reverse=True):
            head = _DANGLING.sub("", claims[:end].rstrip()).rstrip(" ,;:")
            # what is left must still answer: "X is an author born in Torteslen" is no birth date
            if head and self._lends(question, head, subject) is False and \
                    fits_kind(key_spans(head, question), head, question):
                return head if head[-1] in ".!?" else head + "."
        return None

    def _lends(self, question: str, claims: str, subject: Subject) -> bool | None:
        """None when ``claims`` lends nothing and states no fact of the subject (its own words); False when it lends
        nothing and states one; True when it states what belongs to another subject."""
        from knowledge.distill.facts import key_spans
        from knowledge.distill.verify import answer_kind, foreign, off_topic

        own, others = subject
        spans = key_spans(claims, question)
        if foreign(claims, spans, own, others, self.pipe.kb.bm25.rare_word):
            return True
        held = [span for span in spans if any(contains(text, span) for text in own)]
        if not held:
            return None
        if answer_kind(question) == "person":  # a person is the passage's subject, not one clause's
            return False
        return not any(not off_topic(question, held, text) for text in own
                       if all(contains(text, span) for span in held))

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
