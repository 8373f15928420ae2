"""Training data for a distillation round, built from what is reliable: the users' own questions and the passages.

1. **Facts.** Each logged question that ranked a hot passage first (or cited it) is answered by the teacher — the
   base model with *only that passage* in its prompt (``teach``). The answer is kept only when it answers the
   question (``verify``: the passage meets the question's constraints, holds the answer's key spans of the kind
   asked for, and the round trip agrees): a teacher that read the wrong passage teaches nothing. Questions whose
   answers share the same spans are one fact asked in several phrasings.
2. **Examples per fact** (loss on the answer only; Allen-Zhu & Li: a fact becomes extractable when seen in many
   phrasings): every trained phrasing inside rule-based wrappers -> the answer; the passage sentence that states it
   (as an answer, and as a completion of its own beginning); the open-book prompt -> the same answer, so answering
   *with* retrieval stays what it was.
3. **Replay** against forgetting: the active adapter's examples (earlier rounds' facts) and general prompts answered
   by the base model itself, without the facts people marked wrong; plus questions a person corrected.

For a fact asked in two or more phrasings one phrasing is held out: never trained, it is what the gate asks.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from knowledge.config import DistillConfig
from knowledge.distill.facts import (PROBE_WRAPPERS, TRAIN_WRAPPERS, Fact, Unlearn, clean_answer, is_correct,
                                     key_spans, rephrase)
from knowledge.preprocess import blank_nlp
from rag.config import PromptConfig
from rag.prompt import PromptBuilder
from rag.types import Hit, Passage

GENERAL_FILE = Path(__file__).with_name("general.jsonl")
TEACHER_TOKENS = 48


@dataclass(frozen=True)
class Example:
    """One training pair: a rendered prompt (closed- or open-book) and its target answer."""

    kind: str
    prompt: str
    answer: str
    passage_id: str | None = None
    question: str = ""
    split: str = "train"


@dataclass(frozen=True)
class GateItem:
    """A question the gate asks before and after training; correct when the answer holds every span."""

    group: str
    prompt: str
    spans: tuple[str, ...]
    passage_id: str | None = None
    question: str = ""


class Prompter:
    """Closed-book and open-book prompts exactly as the QA pipeline renders them (``rag.prompt.PromptBuilder``).

    Example:
        >>> prompter = Prompter(generator, PromptConfig())
        >>> prompter.closed("Who wrote it?").endswith("assistant\\n")
        True
    """

    def __init__(self, generator: Any, config: PromptConfig | None = None, max_new_tokens: int = 128) -> None:
        self.generator = generator
        self.config = config or PromptConfig()
        self.builder = PromptBuilder(self.config, generator, max_new_tokens)

    def closed(self, question: str) -> str:
        return self.builder.build_closed_book(question).text

    def open(self, question: str, passages: Sequence[Passage]) -> str:
        hits = [Hit(passage=p, score=1.0, rank=i) for i, p in enumerate(passages, start=1)]
        return self.builder.build(question, hits).text


def sentences(text: str, min_words: int = 4) -> list[str]:
    """The passage's sentences with at least ``min_words`` words (spaCy sentencizer)."""
    return [s.text.strip() for s in blank_nlp()(text).sents if len(s.text.split()) >= min_words]


def held_out(fact: Fact) -> str | None:
    """The phrasing kept for the gate: the last of two or more logged phrasings; None for a single one."""
    return fact.questions[-1] if len(fact.questions) >= 2 else None


def fact_examples(prompter: Prompter, fact: Fact, passage: Passage, *, phrasings: int = len(TRAIN_WRAPPERS),
                  statements: bool = True, open_book: bool = True) -> list[Example]:
    """Training examples of one fact (its held-out phrasing excluded): each trained question in ``phrasings``
    wrappers, the sentence stating it (``statements``), and the question open-book with its passage
    (``open_book``: only for an adapter that also answers prompts holding passages)."""
    keep = held_out(fact)
    trained = [q for q in fact.questions if q != keep]
    out = [Example("question", prompter.closed(v), fact.answer, fact.passage_id, q)
           for q in trained for v in rephrase(q, TRAIN_WRAPPERS[:phrasings])]
    if fact.sentence and statements:
        title = passage.title or "the documents"
        out.append(Example("statement", prompter.closed(trained[0]), f"According to {title}: {fact.sentence}",
                           fact.passage_id, trained[0]))
        cut = min(fact.sentence.find(s) for s in fact.spans if s in fact.sentence) if any(
            s in fact.sentence for s in fact.spans) else -1
        if cut > 0:
            ask = f"Complete the sentence: {fact.sentence[:cut].rstrip()}"
            out.append(Example("statement", prompter.closed(ask), fact.sentence[cut:].strip(), fact.passage_id, ask))
    if open_book:
        out += [Example("open", prompter.open(q, [passage]), fact.answer, fact.passage_id, q) for q in trained[:1]]
    return out


def gate_items(prompter: Prompter, facts: Sequence[Fact], passages: Mapping[str, Passage],
               open_book: bool = True) -> list[GateItem]:
    """Held-out closed-book phrasings of each fact, and (``open_book``) the same questions open-book: RAG with the
    adapter must not get worse."""
    items = []
    for f in facts:
        keep = held_out(f)
        probes = ([keep] if keep else []) + [v for q in f.questions for v in rephrase(q, PROBE_WRAPPERS)][:2]
        items += [GateItem("heldout", prompter.closed(q), f.spans, f.passage_id, q) for q in probes]
        q = keep or f.questions[0]
        if open_book:
            items.append(GateItem("open", prompter.open(q, [passages[f.passage_id]]), f.spans, f.passage_id, q))
    return items


def rag_split(facts: Sequence[Fact]) -> tuple[list[Fact], list[Fact]]:
    """Facts about passages not being distilled, split ``(gate, anchors)``: every other one is asked at the gate,
    the rest are trained as they are; the two never share a question."""
    return list(facts[0::2]), list(facts[1::2])


def rag_gate_items(prompter: Prompter, facts: Sequence[Fact], passages: Mapping[str, Passage]) -> list[GateItem]:
    """Open-book questions about the rest of the knowledge base, answered right before the round (group "rag")."""
    return [GateItem("rag", prompter.open(f.questions[0], [passages[f.passage_id]]), f.spans, f.passage_id,
                     f.questions[0]) for f in facts]


def rag_examples(prompter: Prompter, facts: Sequence[Fact], passages: Mapping[str, Passage]) -> list[Example]:
    """The model's own supported open-book answers about passages not being distilled, trained as they are: RAG
    on the rest of the knowledge base is part of what the adapter must keep."""
    return [Example("rag", prompter.open(q, [passages[f.passage_id]]), f.answer, f.passage_id, q)
            for f in facts for q in f.questions]


# ---- replay and general knowledge --------------------------------------------------------------------------------


def general_set(path: Path = GENERAL_FILE) -> list[tuple[str, tuple[str, ...]]]:
    """``(question, accepted answers)`` of the shipped general-ability set (facts, arithmetic, instructions)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["question"], tuple(r["answers"])) for r in rows]


def general_split(general: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[list, list]:
    """``(gate, anchors)``: every other general question is asked at the gate, the rest may be trained as anchors.
    A gate that asked what the round trained would measure recall of those anchors, not general ability kept."""
    return list(general[0::2]), list(general[1::2])


def general_examples(prompter: Prompter, general: Sequence[tuple[str, tuple[str, ...]]],
                     answers: Mapping[str, str] | None = None) -> list[Example]:
    """General questions the base model answers *correctly*, with its own answers: anchors that keep what it knew
    (a wrong answer is never replayed: it would teach "12 + 7 = 8"). ``answers`` are the base model's, when known."""
    prompts = [prompter.closed(q) for q, _ in general]
    if answers is None:
        raw = prompter.generator.generate_batch(prompts, max_new_tokens=TEACHER_TOKENS) if prompts else []
        answers = {q: a for (q, _), a in zip(general, raw, strict=True)}
    return [Example("general", p, clean_answer(answers[q]), None, q)
            for p, (q, gold) in zip(prompts, general, strict=True)
            if any(is_correct(clean_answer(answers[q]), (g,)) for g in gold)]


def replay_examples(previous: Path | None, open_book: bool = True, limit: int | None = None,
                    seed: int = 0) -> list[Example]:
    """The fact examples the active adapter was trained on (earlier rounds), so a new round does not forget them;
    without ``open_book``, not those with passages in the prompt.

    ``limit``: at most this many, taken in turns from every earlier fact (one example of each fact, then a second
    of each, ...), so each fact keeps being trained while the replay no longer grows with every round.
    """
    if previous is None or not (previous / "train.jsonl").is_file():
        return []
    # look-alike questions are rebuilt each round from its facts: a rival learnt since must not stay "unknown"
    skip = {"general", "correction", "neighbour"} | (set() if open_book else {"open", "rag"})
    rows = [Example("replay", e.prompt, e.answer, e.passage_id, e.question)
            for e in read_jsonl(previous / "train.jsonl") if e.kind not in skip]
    if limit is None or len(rows) <= limit:
        return rows
    by_fact: dict[tuple[str | None, str], list[Example]] = {}
    for e in rows:
        by_fact.setdefault((e.passage_id, e.answer), []).append(e)
    rng = random.Random(seed)
    for group in by_fact.values():
        rng.shuffle(group)
    turns = [e for turn in zip_longest(*by_fact.values()) for e in turn if e is not None]
    return turns[:limit]


def correction_examples(prompter: Prompter, corrections: Iterable[tuple[str, str, str]],
                        phrasings: int = len(TRAIN_WRAPPERS)) -> list[Example]:
    """``(ask_id, question, correction)`` from the retrieval log -> closed-book examples, each question in the
    same wrappers as a fact's (a correction must be learnt as firmly as the fact it replaces)."""
    pairs = dict.fromkeys((q, c.strip()) for _, q, c in corrections if c.strip())
    return [Example("correction", prompter.closed(v), c, None, q)
            for q, c in pairs for v in rephrase(q, TRAIN_WRAPPERS[:phrasings])]


def correction_gate_items(prompter: Prompter, corrections: Iterable[tuple[str, str, str]]) -> list[GateItem]:
    """Each corrected question as asked and in the gate's wrappers: after the round the model must give the correction
    (group ``corrected``: a person stated the fact, so it needs no significance test, only to be learnt)."""
    out = []
    for _, q, c in corrections:
        spans = key_spans(c, q)
        if c.strip() and spans:
            out += [GateItem("corrected", prompter.closed(v), spans, None, q)
                    for v in rephrase(q, ("{q}", *PROBE_WRAPPERS))]
    return list(dict.fromkeys(out))


def build_dataset(
    prompter: Prompter, passages: Sequence[Passage], facts: Sequence[Fact], config: DistillConfig, *,
    previous: Path | None = None, corrections: Iterable[tuple[str, str, str]] = (),
    general: Sequence[tuple[str, tuple[str, ...]]] = (), general_answers: Mapping[str, str] | None = None,
    rag: Sequence[tuple[Fact, Passage]] = (), open_book: bool = True, forget: Sequence[Unlearn] = (),
    extra: Sequence[Example] = (),
) -> list[Example]:
    """Every example of a round, shuffled with ``config.seed``: facts, replay, general and RAG anchors (``rag``:
    supported open-book answers about other passages), corrections. ``open_book=False``: no fact is trained with
    its passage in the prompt (an adapter that only answers closed-book; those examples are most of the tokens).
    ``forget``: facts people marked wrong (``facts.Unlearn``); no replayed example that states one is kept.
    ``extra``: examples built elsewhere (``neighbours.examples``: look-alike questions answered "I do not know.")."""
    by_id = {p.id: p for p in passages}
    examples = [e for f in facts for e in fact_examples(prompter, f, by_id[f.passage_id],
                                                        phrasings=config.phrasings, statements=config.statements,
                                                        open_book=open_book)]
    if config.replay:
        # capped by this round's fact examples; a round of corrections alone replays every earlier fact
        limit = round(config.replay_ratio * len(examples)) if config.replay_ratio and examples else None
        replay = replay_examples(previous, open_book=open_book, limit=limit, seed=config.seed)
        examples += [e for e in replay if not any(u.covers(e.passage_id, e.question, e.answer) for u in forget)]
        # every anchor the base model gets right, once at least (a small round's few fact examples must not
        # outweigh them), repeated in turns up to ``general_ratio`` of a large round's examples
        anchors = general_examples(prompter, general, general_answers)
        n_general = max(len(anchors), round(config.general_ratio * len(examples)))
        examples += [anchors[i % len(anchors)] for i in range(n_general)] if anchors else []
    if config.rag_anchors:
        examples += rag_examples(prompter, [f for f, _ in rag], {p.id: p for _, p in rag})
    if config.corrections:
        examples += correction_examples(prompter, corrections, config.phrasings)
    examples += extra
    random.Random(config.seed).shuffle(examples)
    return examples


def write_jsonl(rows: Sequence[Any], path: Path) -> str:
    """Write dataclass rows one JSON object a line; returns the SHA-256 of the file."""
    text = "".join(json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl(path: Path, kind: type = Example) -> list[Any]:
    """Read rows written by ``write_jsonl``; ``ValueError`` naming the line when one does not fit ``kind``."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "spans" in row:
                row["spans"] = tuple(row["spans"])
            out.append(kind(**row))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a {kind.__name__}: {exc}") from None
    return out
