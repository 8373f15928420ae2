"""Look-alike questions: a taught question asked about another subject, one the adapter was not taught.

A 135M model that learnt "Ana Vel wrote The Salt Road" also answers "The Salt Road" to "Which book did Bo Kran
write?": it lends its facts to look-alikes (the look-alike bench counted 25 of 126 closed-book answers; the base
model, none). Model editing measures this as *specificity* on neighbourhood prompts — prompts about nearby subjects
must keep their answers (Meng et al., 2022, "Locating and Editing Factual Associations in GPT", arXiv:2202.05262) —
and refusal-aware tuning trains "I don't know" for questions beyond what a model knows (Zhang et al., 2024,
"R-Tuning", NAACL, arXiv:2311.09677). A round does both with what it already has: the passages retrieval ranked for
a fact's questions *besides* the taught one are its look-alikes (the siblings that fooled retrieval). The question
with its subject swapped for a rival's — the subject's name for the rival's title, its date for the rival's date —
is a neighbour: some are trained to ``UNKNOWN``, the rest are asked at the gate, where the adapter must not state
the taught answer to them more often than the model before it.

Example:
    >>> swap_subject("Which book did Ana Vel write?", ana, bo)   # passages titled "Ana Vel" and "Bo Kran"
    'Which book did Bo Kran write?'
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from knowledge.distill.data import Example, GateItem, Prompter
from knowledge.distill.gate import NEIGHBOUR as GROUP
from knowledge.distill.facts import TRAIN_WRAPPERS, Fact, rephrase
from knowledge.distill.teach import haystack
from knowledge.distill.verify import constraints, unmet
from rag.text import contains, date_mentions, dates, held_date
from rag.types import Passage

UNKNOWN = "I do not know."  # what the closed-book system prompt asks for when the model does not know
MAX_TITLE_WORDS = 5


@dataclass(frozen=True)
class Neighbour:
    """``question`` asks of ``rival`` what ``fact``'s question asked of the fact's passage."""

    fact: Fact
    question: str
    rival: Passage


def swap_subject(question: str, passage: Passage, rival: Passage) -> str | None:
    """``question`` about ``passage``'s subject asked of ``rival``'s instead; None when no name or date swaps, or
    when the result is not about the rival alone (the rival must meet its constraints, the passage must not)."""
    text = question
    title = rival.title.strip()
    if passage.title and _is_name(title) and not contains(passage.title, title):
        for name in constraints(question)["names"]:
            if contains(passage.title, name):
                text = re.sub(r"\s+".join(map(re.escape, name.split())), title, text)
    ours = dates(haystack(passage))
    theirs = [(w, d) for w, d in date_mentions(rival.text) if not held_date(d, ours)]
    for written, d in date_mentions(question):
        if theirs and held_date(d, ours):
            text = text.replace(written, theirs[0][0])
    if text == question or unmet(text, haystack(rival)) or not unmet(text, haystack(passage)):
        return None
    return text


def neighbours(facts: Sequence[Fact], passages: Mapping[str, Passage], rivals: Mapping[str, Sequence[Passage]],
               taught: Collection[str], per_fact: int = 3,
               asked: Mapping[str, Sequence[str]] | None = None) -> list[Neighbour]:
    """Up to ``per_fact`` neighbours of each fact: its questions asked of the passages ranked for them (``rivals``:
    question -> ranked passages) or for any question ``asked`` about its passage (passage id -> questions), in
    rank order; then of the passages ranked for the *other* facts' questions (other look-alike families: a model
    that learnt one author's book answers it for every author), each rival once while there are others.

    ``taught``: passage ids the adapter learns (this round's and the active adapter's): a rival the adapter knows
    is no unknown subject. A rival from the fact's own document is not another subject either.
    """
    everyone = [r for f in facts for q in f.questions for r in rivals.get(q, ())]
    out = []
    for fact in facts:
        passage = passages[fact.passage_id]
        near = [r for q in (*fact.questions, *(asked or {}).get(fact.passage_id, ())) for r in rivals.get(q, ())]
        pool = {r.id: r for r in (*near, *everyone) if r.doc_id != passage.doc_id and r.id not in taught}
        found: dict[str, Passage] = {}
        for turn in range(len(fact.questions)):  # every rival asked one question, then every rival a second, ...
            for rival in pool.values():
                if len(found) >= per_fact:
                    break
                for question in (*fact.questions[turn:], *fact.questions[:turn]):
                    swapped = swap_subject(question, passage, rival)
                    if swapped and swapped not in found:
                        found[swapped] = rival
                        break
        out += [Neighbour(fact, q, r) for q, r in found.items()]
    return out


def split(found: Sequence[Neighbour]) -> tuple[list[Neighbour], list[Neighbour]]:
    """``(train, gate)``: each fact's second neighbour is held out for the gate, the others are trained."""
    train, gate = [], []
    rank: dict[Fact, int] = {}
    for n in found:
        rank[n.fact] = rank.get(n.fact, 0) + 1
        (gate if rank[n.fact] == 2 else train).append(n)
    return train, gate


def examples(prompter: Prompter, train: Sequence[Neighbour], phrasings: int = 2) -> list[Example]:
    """Each trained neighbour in ``phrasings`` wrappers, answered ``UNKNOWN`` (loss on the answer, like a fact)."""
    return [Example(GROUP, prompter.closed(v), UNKNOWN, n.rival.id, n.question)
            for n in train for v in rephrase(n.question, TRAIN_WRAPPERS[:phrasings])]


def gate_items(prompter: Prompter, held: Sequence[Neighbour]) -> list[GateItem]:
    """Held-out neighbours, closed-book, with the *taught* fact's spans: stating them is lending the fact."""
    return [GateItem(GROUP, prompter.closed(n.question), n.fact.spans, n.rival.id, n.question) for n in held]


def _is_name(title: str) -> bool:
    """A title that names one subject ("Bo Kran", "MV Saltwren"), not a heading ("Effect of salt on kilns")."""
    words = title.split()
    return 0 < len(words) <= MAX_TITLE_WORDS and all(w[:1].isupper() for w in words)
