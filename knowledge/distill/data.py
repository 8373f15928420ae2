"""Training data for a distillation round: what the model should answer closed-book about the hot passages.

Every example is a rendered closed-book prompt and a target answer. Kinds (each switchable in ``DistillConfig``):

* ``context``     logged question -> the teacher's answer, the teacher being the model WITH the passage in context
* ``synthetic``   question/answer written by the model from the passage, kept only when the answer is supported
* ``restatement`` the passage's facts restated: by the model (sampled), "According to <title>: <sentence>", cloze
* ``replay``      earlier distilled examples (from the active adapter) and general questions with the base
                  model's own answers, so the adapter does not forget what it knew
* ``correction``  a question a person corrected -> the correction

A fraction of each passage's questions is held out (``split = "holdout"``) for the gate and never trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from functools import lru_cache
from typing import Any

from rag.config import DistillConfig, PromptConfig
from rag.types import Hit, Passage

GENERAL_QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "What is water made of?",
    "Name a primary colour.",
    "What do bees make?",
    "What is 12 plus 7?",
    "Which planet do we live on?",
    "What language is spoken in Spain?",
)
SUPPORT_THRESHOLD = 0.5  # share of a synthetic answer's content words that must occur in the passage
QA_RE = re.compile(r"question\s*:\s*(?P<q>.+?)\s*answer\s*:\s*(?P<a>.+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    """One training (or held-out) pair: a rendered closed-book prompt and its target answer."""

    kind: str
    prompt: str
    answer: str
    passage_id: str | None = None
    question: str = ""
    split: str = "train"


# ---- prompts, sentences, cloze (shared with the gate) -----------------------------------------------------------


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
        try:
            from rag.prompt import PromptBuilder
        except ImportError:  # rag.prompt is being written in parallel; render the same shape meanwhile
            self.builder = None
        else:
            self.builder = PromptBuilder(self.config, generator, max_new_tokens)

    def closed(self, question: str) -> str:
        if self.builder is None:
            return self.generator.render([{"role": "user", "content": question}])
        return self.builder.build_closed_book(question).text

    def open(self, question: str, passages: Sequence[Passage]) -> str:
        if self.builder is None:
            context = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, start=1))
            return self.generator.render([{"role": "system", "content": self.config.system},
                                          {"role": "user", "content": f"{context}\n\nQuestion: {question}"}])
        hits = [Hit(passage=p, score=1.0, rank=i) for i, p in enumerate(passages, start=1)]
        return self.builder.build(question, hits).text


@lru_cache(maxsize=1)
def _nlp() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def sentences(text: str, min_words: int = 4) -> list[str]:
    """The passage's sentences with at least ``min_words`` words (spaCy sentencizer)."""
    return [s.text.strip() for s in _nlp()(text).sents if len(s.text.split()) >= min_words]


def content_words(text: str) -> set[str]:
    """Lower-cased alphanumeric words that are not spaCy stop words and have 3+ characters (or digits)."""
    stops = _nlp().Defaults.stop_words
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in stops and (len(w) > 2 or w.isdigit())}


def content_overlap(answer: str, passage: str) -> float:
    """Share of the answer's content words found in the passage (1.0 = fully supported); 0 for none."""
    words = content_words(answer)
    return len(words & content_words(passage)) / len(words) if words else 0.0


@dataclass(frozen=True)
class Cloze:
    masked: str
    answer: str


def cloze(sentence: str, choice: int = 0) -> Cloze | None:
    """Mask the ``choice``-th most salient token (numbers, then capitalised words, then long words)."""
    doc = _nlp()(sentence)
    ranked = sorted(
        (t for t in doc if t.is_alpha or t.like_num or any(c.isdigit() for c in t.text)),
        key=lambda t: (not (t.like_num or any(c.isdigit() for c in t.text)),
                       not (t.text[:1].isupper() and t.i > 0), t.is_stop, -len(t.text), t.i),
    )
    ranked = [t for t in ranked if not t.is_stop and len(t.text) >= 3 or t.like_num]
    if len(ranked) <= choice:
        return None
    token = ranked[choice]
    masked = sentence[: token.idx] + "___" + sentence[token.idx + len(token.text):]
    return Cloze(masked, token.text)


# ---- the kinds --------------------------------------------------------------------------------------------------


def context_examples(prompter: Prompter, passage: Passage, questions: Sequence[str]) -> list[Example]:
    """Teacher (passage in the prompt) answers each logged question; the student learns it closed-book."""
    if not questions:
        return []
    answers = prompter.generator.generate_batch([prompter.open(q, [passage]) for q in questions])
    return [Example("context", prompter.closed(q), a.strip(), passage.id, q)
            for q, a in zip(questions, answers, strict=True) if a.strip()]


def synthetic_examples(prompter: Prompter, passage: Passage, n: int = 2) -> list[Example]:
    """Ask the model for ``n`` question/answer pairs about the passage; keep the supported, parseable ones."""
    ask = ("Write one question that the text below answers, then its answer.\n"
           "Use the format:\nQuestion: ...\nAnswer: ...\n\nText:\n" + passage.text)
    prompt = prompter.generator.render([{"role": "user", "content": ask}])
    outs = prompter.generator.generate_batch([prompt] * n, temperature=0.8 if n > 1 else 0.0)
    seen: set[str] = set()
    examples = []
    for out in outs:
        match = QA_RE.search(out)
        if not match:
            continue
        q, a = match["q"].strip(), match["a"].strip().split("\n")[0].strip()
        if q.lower() in seen or len(a) < 2 or content_overlap(a, passage.text) < SUPPORT_THRESHOLD:
            continue
        seen.add(q.lower())
        examples.append(Example("synthetic", prompter.closed(q), a, passage.id, q))
    return examples


def restatement_examples(prompter: Prompter, passage: Passage, n_generated: int) -> list[Example]:
    """Deterministic restatements and cloze statements of each sentence, plus ``n_generated`` model rewrites."""
    title = passage.title or "the knowledge base"
    question = f"What does {title} say?"
    out = [Example("restatement", prompter.closed(question), f"According to {title}: {s}", passage.id, question)
           for s in sentences(passage.text)]
    for sentence in sentences(passage.text):
        item = cloze(sentence, choice=1)  # choice 0 is kept for the gate's probe
        if item:
            ask = f"Fill in the blank: {item.masked}"
            out.append(Example("restatement", prompter.closed(ask), item.answer, passage.id, ask))
    if n_generated:
        ask = f"Restate the facts of this text in your own words:\n\n{passage.text}"
        prompt = prompter.generator.render([{"role": "user", "content": ask}])
        for text in prompter.generator.generate_batch([prompt] * n_generated, temperature=0.8):
            if text.strip() and content_overlap(text, passage.text) >= SUPPORT_THRESHOLD:
                out.append(Example("restatement", prompter.closed(question), text.strip(), passage.id, question))
    return out


def replay_examples(previous: Path | None, limit: int, seed: int) -> list[Example]:
    """Up to ``limit`` training examples of the active adapter (its ``train.jsonl``), sampled with ``seed``."""
    if previous is None or not (previous / "train.jsonl").is_file():
        return []
    rows = [e for e in read_jsonl(previous / "train.jsonl") if e.split == "train"]
    random.Random(seed).shuffle(rows)
    return [Example("replay", e.prompt, e.answer, e.passage_id, e.question) for e in rows[:limit]]


def general_examples(prompter: Prompter, questions: Sequence[str]) -> list[Example]:
    """General questions answered by the (base) model itself: anchors that limit forgetting."""
    prompts = [prompter.closed(q) for q in questions]
    answers = prompter.generator.generate_batch(prompts) if prompts else []
    return [Example("replay", p, a.strip(), None, q) for p, q, a in zip(prompts, questions, answers, strict=True)
            if a.strip()]


def correction_examples(prompter: Prompter, corrections: Iterable[tuple[str, str, str]]) -> list[Example]:
    """``(ask_id, question, correction)`` from the retrieval log -> closed-book examples."""
    return [Example("correction", prompter.closed(q), c.strip(), None, q) for _, q, c in corrections if c.strip()]


# ---- the dataset ------------------------------------------------------------------------------------------------


def hold_out(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """Mark ``fraction`` of each passage's distinct questions as held out (at least one when it has two)."""
    by_passage: dict[str | None, list[str]] = {}
    for e in examples:
        if e.kind in ("context", "synthetic") and e.question not in by_passage.setdefault(e.passage_id, []):
            by_passage[e.passage_id].append(e.question)
    held: set[tuple[str | None, str]] = set()
    rng = random.Random(seed)
    for pid, questions in sorted(by_passage.items(), key=lambda kv: str(kv[0])):
        if len(questions) < 2:
            continue
        n = min(len(questions) - 1, max(1, round(fraction * len(questions))))
        held.update((pid, q) for q in rng.sample(questions, n))
    return [Example(e.kind, e.prompt, e.answer, e.passage_id, e.question,
                    "holdout" if (e.passage_id, e.question) in held and e.kind in ("context", "synthetic") else "train")
            for e in examples]


def build_dataset(
    prompter: Prompter, passages: Sequence[Passage], questions: Mapping[str, Sequence[str]], config: DistillConfig,
    *, previous: Path | None = None, corrections: Iterable[tuple[str, str, str]] = (),
    general: Sequence[str] = GENERAL_QUESTIONS,
) -> tuple[list[Example], list[str]]:
    """All enabled kinds for ``passages``, with held-out questions marked; returns ``(examples, kinds)``."""
    new: list[Example] = []
    for p in passages:
        if config.context_distillation:
            new += context_examples(prompter, p, questions.get(p.id, []))
        if config.synthetic_qa:
            new += synthetic_examples(prompter, p)
        if config.restatements:
            new += restatement_examples(prompter, p, config.restatements)
    if config.corrections:
        new += correction_examples(prompter, corrections)
    if config.replay:
        n_train = sum(1 for e in new if e.kind != "correction")
        new += replay_examples(previous, max(1, n_train // 2), config.seed) + general_examples(prompter, general)
    examples = hold_out(new, config.holdout_fraction, config.seed)
    return examples, sorted({e.kind for e in examples})


def write_jsonl(examples: Sequence[Example], path: Path) -> str:
    """Write the examples one JSON object a line; returns the SHA-256 of the file."""
    text = "".join(json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) + "\n" for e in examples)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl(path: Path) -> list[Example]:
    """Read examples written by ``write_jsonl``; ``ValueError`` naming the line when one is not an example."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Example(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a training example: {exc}") from None
    return out
