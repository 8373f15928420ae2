"""A distillation round: select hot passages -> build data -> train LoRA -> gate -> promote (or keep as rejected).

Only one round runs at a time per KB (``<kb>/adapters/.round.lock``). The adapter trains inside a temp folder, so a
killed round leaves the active adapter untouched; the next round removes the leftovers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from knowledge.distill import gate, neighbours
from knowledge.distill.adapters import AdapterRegistry, new_adapter_id
from knowledge.files import write_json_atomic
from knowledge.distill.data import (GateItem, Prompter, build_dataset, correction_gate_items, gate_items,
                                    general_set, general_split, rag_gate_items, rag_split, read_jsonl, write_jsonl)
from knowledge.distill.facts import Fact, Unlearn, is_correct, key_spans
from knowledge.distill.teach import teach
from knowledge.distill.select import select_hot
from knowledge.distill.train import train_lora
from knowledge.kb import KnowledgeBase, release_lock, take_lock
from knowledge.log import RetrievalLog
from pipelines.config import Settings
from rag.generation.backends import chosen_backend
from rag.errors import KnowledgeBaseError
from rag.config import GenerationConfig
from rag.generation.generate import HFGenerator
from rag.generation.hf_model import model_folder
from rag.types import Passage

LAST_ROUND_KEY = "distill_last_round_ts"
LOCK_NAME = ".round.lock"


@dataclass
class DistillReport:
    promoted: bool
    adapter: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    passages: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lock(kb_root: Path) -> int:
    folder = kb_root / "adapters"
    folder.mkdir(parents=True, exist_ok=True)
    return take_lock(folder / LOCK_NAME, f"a distillation round is already running on {kb_root}")


def is_due(kb: KnowledgeBase, settings: Settings) -> bool:
    """True when ``distill.every_n_queries`` asks were logged since the last round."""
    last = float(kb.store.get_meta(LAST_ROUND_KEY) or 0.0)
    return RetrievalLog(kb.store, settings.log).asks_since(last) >= settings.distill.every_n_queries


class DistillRound:
    """One round of distillation on the KB of ``settings``: facts -> data -> LoRA -> accuracy gate -> promotion.

    Example:
        >>> report = DistillRound(settings).run()
        >>> report.promoted, report.reason
        (True, "held-out closed-book 0.000 -> 0.800 (+12/-0, p=0.000244); RAG answers stay the base model's (adapter_scope closed); no significant regression")
    """

    def __init__(self, settings: Settings, *, generator: HFGenerator | None = None,
                 general: Sequence[tuple[str, tuple[str, ...]]] | None = None, progress: bool = True,
                 on_step: Any = None) -> None:
        self.settings = settings
        self.config = settings.distill
        self.generator = generator  # the un-adapted teacher; loaded lazily when not given
        self.general, self.anchors = general_split(general_set() if general is None else list(general))
        self.progress = progress
        self.on_step = on_step
        self.timings: dict[str, float] = {}

    def run(self, if_due: bool = False) -> DistillReport:
        start = time.perf_counter()
        kb = KnowledgeBase.open(self.settings.kb.path)
        try:
            if if_due and not is_due(kb, self.settings):
                return DistillReport(False, None, reason="not due: too few asks since the last round")
            fd = _lock(kb.root)
            try:
                report = self._round(kb)
            finally:
                release_lock(fd)
            kb.store.set_meta(LAST_ROUND_KEY, str(time.time()))
        finally:
            kb.close()
        report.seconds = round(time.perf_counter() - start, 2)
        return report

    def _round(self, kb: KnowledgeBase) -> DistillReport:
        registry = AdapterRegistry(kb.root)
        registry.clean_temps()
        log = RetrievalLog(kb.store, self.settings.log)
        t0 = time.perf_counter()
        plan = self.plan(kb, registry, log)
        if not plan.chosen and not plan.pending:
            return DistillReport(False, None, reason=f"no passage with weight >= {self.config.min_hits} that ranked "
                                                     "first for a logged question and is not learnt yet")
        if not plan.facts and not plan.pending:
            return DistillReport(False, None, reason=f"the teacher's answers about {len(plan.chosen)} hot passages "
                                                     "do not verifiably answer their questions: nothing reliable to "
                                                     f"learn ({plan.stats})", passages=len(plan.chosen))
        prompter = plan.prompter
        # RAG on the rest of the KB is only at stake when the adapter serves prompts with passages
        others = self._rag_facts(kb, log, prompter, {p.id for p in plan.chosen}) if self._rag_served else []
        self.timings = {"teach_s": round(time.perf_counter() - t0, 1)}
        adapter_id = new_adapter_id()
        tmp = registry.new_temp(adapter_id)
        try:
            return self._train_and_gate(registry, log, plan, others, adapter_id, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def plan(self, kb: KnowledgeBase, registry: AdapterRegistry, log: RetrievalLog) -> RoundPlan:
        """What this round would teach: the hot passages, the verified facts, what people marked wrong."""
        unlearn = unlearned(log)
        parent = registry.active_path()
        parent_rows = read_jsonl(parent / "train.jsonl") if parent and (parent / "train.jsonl").is_file() else []
        wrong = {e.passage_id for e in parent_rows if any(u.covers(e.passage_id, e.question, e.answer)
                                                           for u in unlearn)}
        learned = {pid for pid, c in registry.covered().items() if c >= self.config.auto_confidence} - wrong
        hot = select_hot(log, self.config, covered=learned)
        questions = log.questions_for([h.passage_id for h in hot], max_rank=1)
        found = kb.store.get_passages([h.passage_id for h in hot if questions.get(h.passage_id)])
        chosen = [found[h.passage_id] for h in hot if h.passage_id in found]
        prompter = Prompter(self._teacher(), self.settings.prompt, self.settings.generation.max_new_tokens)
        asked = [q for p in chosen for q in questions[p.id]]
        ranked = log.ranked_hits(asked)
        rival_passages = kb.store.get_passages(list({pid for pids in ranked.values() for pid in pids}))
        rivals = {q: [rival_passages[pid] for pid in pids if pid in rival_passages] for q, pids in ranked.items()}
        stats: dict[str, int] = {}
        facts = teach(prompter, chosen, questions, rivals=rivals, rare=kb.bm25.rare_word, unlearn=unlearn,
                      stats=stats) if chosen else []
        trained = {(e.question, e.answer) for e in parent_rows if e.kind == "correction"}
        # corrections alone start a round only when there are weights to correct; else the next round of hot
        # facts trains them (a handful of corrections is too little data for a first adapter)
        pending = parent is not None and (bool(wrong) or any((q, c.strip()) not in trained
                                                             for _, q, c in log.corrections() if c.strip()))
        return RoundPlan(prompter, chosen, facts, unlearn, wrong, pending, stats, rivals, learned, questions)

    def _rag_facts(self, kb: KnowledgeBase, log: RetrievalLog, prompter: Prompter,
                   chosen: set[str]) -> list[tuple[Fact, Passage]]:
        """Supported open-book answers to what users ask about the rest of the KB (not being distilled)."""
        asked = log.top_questions(exclude=chosen, limit=self.config.rag_questions)
        found = kb.store.get_passages(list(asked))
        return [(f, found[f.passage_id]) for f in teach(prompter, list(found.values()), asked)]

    @property
    def _rag_served(self) -> bool:
        return self.settings.generation.adapter_scope == "all"

    def _teacher(self) -> HFGenerator:
        if self.generator is None:
            self.generator = HFGenerator(self.settings.generation, adapter="")
        return self.generator

    def _gate_model(self, adapter: Path | None) -> Any:  # noqa: ANN401 - a rag.types.Generator
        """The model the gate asks, with ``adapter``: the backend that will serve its answers. llama.cpp's greedy
        answers are not transformers' word for word (112 of 150 general answers alike under BF16 on an AVX512-BF16
        CPU, ``bench/adapter_backends.py --base-only``), so a gate that asked transformers would measure another
        model than the one users get. Transformers for a server backend (it cannot load this round's adapter)."""
        if chosen_backend(self.settings.generation.backend) == "llamacpp":
            from rag.generation.llamacpp import LlamaCppGenerator

            return LlamaCppGenerator(self.settings.generation, adapter=str(adapter) if adapter else "")
        if adapter is None:
            return self._teacher()
        return HFGenerator(self.settings.generation, adapter=str(adapter), base=self._teacher())

    def _train_and_gate(self, registry: AdapterRegistry, log: RetrievalLog, plan: RoundPlan,
                        others: list[tuple[Fact, Passage]], adapter_id: str, tmp: Path) -> DistillReport:
        cfg, gen_cfg = self.config, self.settings.generation
        prompter, chosen, facts = plan.prompter, plan.chosen, plan.facts
        parent = registry.active_path()
        asked, anchors = rag_split(others)
        items = self._gate_items(prompter, chosen, facts, parent, plan.unlearn)
        items += correction_gate_items(prompter, log.corrections())
        items += rag_gate_items(prompter, [f for f, _ in asked], {p.id: p for _, p in asked})
        near_train, near_gate = neighbours.split(plan.neighbours(cfg.neighbours) if cfg.neighbours else [])
        items += neighbours.gate_items(prompter, near_gate)
        write_jsonl([i for i in items if i.group in ("heldout", "retained", "corrected")], tmp / "gate.jsonl")
        key = answers_key(gen_cfg)
        base_answers = registry.answers(None, key)
        current = self._gate_model(parent)
        t0 = time.perf_counter()
        # "before", answered once; what the current model already answered at its own gate is reused
        answers = gate.answer_all(current, items, registry.answers(parent, key) if parent else base_answers)
        self.timings["gate_before_s"] = round(time.perf_counter() - t0, 1)
        before = gate.grade(items, answers)
        # the base model's answers to the anchor half of the general set are its anchors (None: generated by
        # build_dataset); the first round asks them of the base model it already holds
        anchor_items = [GateItem("anchor", prompter.closed(q), a, None, q) for q, a in self.anchors]
        if parent is None:
            base_answers |= {it.prompt: a for it, a in zip(items, answers, strict=True) if it.group == "general"}
            base_answers |= dict(zip((it.prompt for it in anchor_items),
                                     gate.answer_all(current, anchor_items, base_answers), strict=True))
            registry.save_answers(None, key, base_answers)
        del current  # an adapted copy of the weights: not needed while training
        release_memory()
        known = ({it.question: base_answers[it.prompt] for it in anchor_items}
                 if all(it.prompt in base_answers for it in anchor_items) else None)
        examples = build_dataset(prompter, chosen, facts, cfg, previous=parent, corrections=log.corrections(),
                                 general=self.anchors, general_answers=known, rag=anchors,
                                 open_book=self._rag_served, forget=plan.unlearn,
                                 extra=neighbours.examples(prompter, near_train))
        data_hash = write_jsonl(examples, tmp / "train.jsonl")
        trained = train_lora(examples, cfg, gen_cfg, tmp, on_step=self.on_step, progress=self.progress)
        release_memory()  # the trainer's activations and optimizer state: give them back before the next model
        t0 = time.perf_counter()
        replies = gate.answer_all(self._gate_model(tmp), items)
        after = gate.grade(items, replies)
        self.timings["gate_after_s"] = round(time.perf_counter() - t0, 1)
        registry.save_answers(tmp, key, {it.prompt: a for it, a in zip(items, replies, strict=True)
                                         if it.group in ("general", "heldout", "retained", "corrected")})
        results = gate.compare(items, before, after)
        promote, reason = gate.decide(results, cfg, rag_served=self._rag_served,
                                       guarded=self.settings.generation.adapter_subjects)
        confidence = gate.confidence(items, after)
        kept = {pid: c for pid, c in registry.covered().items() if pid not in plan.wrong} if parent and cfg.replay else {}
        covered = {**kept, **confidence}
        metrics = {"gate": gate.report(results), "train": asdict(trained), "facts": len(facts), "teacher": plan.stats,
                   "unlearned_passages": len(plan.wrong), "timings": self.timings,
                   "examples": {k: sum(e.kind == k for e in examples) for k in sorted({e.kind for e in examples})},
                   "peak_rss_mb": peak_rss_mb()}
        manifest = {
            "id": adapter_id, "base_model": gen_cfg.model, "parent": parent.name if parent else None,
            "created": time.time(), "passages": covered, "data_hash": data_hash,
            "settings": cfg.model_dump(), "metrics": metrics, "promoted": promote, "reason": reason,
        }
        final = registry.finish(tmp, manifest, activate=promote)
        return DistillReport(promote, final.name, metrics, reason, passages=len(chosen))

    def _gate_items(self, prompter: Prompter, chosen: list[Passage], facts: list[Fact],
                    parent: Path | None, unlearn: Sequence[Unlearn] = ()) -> list[GateItem]:
        """This round's held-out and open-book items, the general set, and the active adapter's held-out items."""
        items = gate_items(prompter, facts, {p.id: p for p in chosen}, open_book=self._rag_served)
        items += [GateItem("general", prompter.closed(q), answers, None, q) for q, answers in self.general]
        if parent is not None and self.config.replay and (parent / "gate.jsonl").is_file():
            # an earlier fact people marked wrong is no longer asked for: it is being unlearnt
            items += [GateItem("retained", i.prompt, i.spans, i.passage_id, i.question)
                      for i in read_jsonl(parent / "gate.jsonl", GateItem) if i.group != "corrected"
                      and not any(u.covers(i.passage_id, i.question, " ".join(i.spans)) for u in unlearn)]
        return items


@dataclass
class RoundPlan:
    """What a round teaches: hot passages, verified facts, the wrong facts to unlearn and the passages holding
    them; ``pending``: corrections or unlearning the active adapter has not had yet (a round is worth running
    without new hot facts)."""

    prompter: Prompter
    chosen: list[Passage]
    facts: list[Fact]
    unlearn: list[Unlearn]
    wrong: set[str]
    pending: bool
    stats: dict[str, int]
    rivals: dict[str, list[Passage]] = field(default_factory=dict)  # question -> the passages ranked for it
    learned: set[str] = field(default_factory=set)  # passages the active adapter learnt
    asked: dict[str, list[str]] = field(default_factory=dict)  # passage id -> the questions that ranked it first

    def neighbours(self, per_fact: int) -> list[neighbours.Neighbour]:
        """Look-alike questions of this round's facts (``knowledge.distill.neighbours``)."""
        return neighbours.neighbours(self.facts, {p.id: p for p in self.chosen}, self.rivals,
                                     self.learned | {f.passage_id for f in self.facts}, per_fact, self.asked)


def unlearned(log: RetrievalLog) -> list[Unlearn]:
    """The facts people marked wrong: each bad answer's key spans, on the passage it rested on."""
    out = []
    for bad in log.bad_answers():
        spans = key_spans(bad.answer, bad.question)
        if spans and not (bad.correction and is_correct(bad.correction, spans)):
            out.append(Unlearn(bad.question, bad.passage_id, spans))
    return out


def answers_key(config: GenerationConfig) -> str:
    """What a gate answer depends on besides its prompt: the model files, the backend (and its GGUF type), decoding
    settings and answer length."""
    backend = chosen_backend(config.backend)
    if backend == "llamacpp":
        from rag.generation.gguf import chosen_gguf_type

        return json.dumps([config.model, backend, chosen_gguf_type(config.gguf_type), config.temperature,
                           config.top_p, config.seed, gate.ANSWER_TOKENS])
    return json.dumps([model_folder(config), config.dtype, config.temperature, config.top_p, config.seed,
                       gate.ANSWER_TOKENS])


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``: reset by exec, unlike ``ru_maxrss``); None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM"))
    except (OSError, StopIteration, ValueError):
        return None


def release_memory() -> None:
    """Collect garbage and ask glibc to return freed heap pages to the OS (a round's peak RSS is what users see)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the memory is reused by this process anyway
        pass


def maybe_schedule(settings: Settings) -> bool:
    """Start ``rag distill --if-due`` in a background process when a round is due and none runs; True if started.

    The child gets these exact settings (written to ``<kb>/adapters/round-settings.json``, overrides included) and
    the KB path; its output goes to ``<kb>/adapters/last-round.log``.
    """
    try:
        kb = KnowledgeBase.open(settings.kb.path)
    except KnowledgeBaseError:
        return False
    try:
        if not is_due(kb, settings):
            return False
        fd = _lock(kb.root)  # fails when a round runs; released at once: the child takes it for itself
        release_lock(fd)
        root = kb.root
    except KnowledgeBaseError:
        return False
    finally:
        kb.close()
    config = root / "adapters" / "round-settings.json"
    write_json_atomic(config, settings.model_dump())
    with open(root / "adapters" / "last-round.log", "w", encoding="utf-8") as out:
        subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--config", str(config), "--kb", str(root),
                          "distill", "--if-due", "--json"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return True
