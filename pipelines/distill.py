"""A distillation round: select hot passages -> build data -> train LoRA -> gate -> promote (or keep as rejected).

Only one round runs at a time per KB (``<kb>/adapters/.round.lock``). The adapter trains inside a temp folder, so a
killed round leaves the active adapter untouched; the next round removes the leftovers.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from knowledge.distill.adapters import AdapterRegistry, new_adapter_id
from knowledge.distill.data import GENERAL_QUESTIONS, Prompter, build_dataset, write_jsonl
from knowledge.distill.gate import build_probes, compare, decide, score
from knowledge.distill.select import select_hot
from knowledge.distill.train import train_lora
from knowledge.kb import KnowledgeBase, release_lock, take_lock
from knowledge.log import RetrievalLog
from rag.config import Settings
from rag.errors import KnowledgeBaseError
from rag.generate import HFGenerator
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
    """One round of distillation on the KB of ``settings``.

    Example:
        >>> report = DistillRound(settings).run()
        >>> report.promoted, report.adapter
        (True, '20250101-120000-3f2a')
    """

    def __init__(self, settings: Settings, *, generator: HFGenerator | None = None,
                 general: Sequence[str] = GENERAL_QUESTIONS, other_passages: int = 16, progress: bool = True,
                 on_step: Any = None) -> None:
        self.settings = settings
        self.config = settings.distill
        self.generator = generator  # the un-adapted teacher; loaded lazily when not given
        self.general = general
        self.other_passages = other_passages
        self.progress = progress
        self.on_step = on_step

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
        hot = select_hot(log, self.config, covered=registry.covered())
        passages = kb.store.get_passages([h.passage_id for h in hot])
        chosen = [passages[h.passage_id] for h in hot if h.passage_id in passages]
        if not chosen:
            return DistillReport(False, None, reason=f"no uncovered passage with weight >= {self.config.min_hits}")
        adapter_id = new_adapter_id()
        tmp = registry.new_temp(adapter_id)
        try:
            return self._train_and_gate(kb, registry, log, chosen, adapter_id, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _teacher(self) -> HFGenerator:
        if self.generator is None:
            self.generator = HFGenerator(self.settings.generation, adapter="")
        return self.generator

    def _train_and_gate(self, kb: KnowledgeBase, registry: AdapterRegistry, log: RetrievalLog,
                        chosen: list[Passage], adapter_id: str, tmp: Path) -> DistillReport:
        cfg, gen_cfg = self.config, self.settings.generation
        prompter = Prompter(self._teacher(), self.settings.prompt, gen_cfg.max_new_tokens)
        parent = registry.active_path()
        examples, kinds = build_dataset(
            prompter, chosen, log.questions_for([p.id for p in chosen]), cfg, previous=parent,
            corrections=log.corrections(), general=self.general)
        data_hash = write_jsonl(examples, tmp / "train.jsonl")
        trained = train_lora(examples, cfg, gen_cfg, tmp, init_adapter=parent if cfg.continue_active else None,
                             on_step=self.on_step, progress=self.progress)
        probes = build_probes(prompter, chosen, [e for e in examples if e.split == "holdout"],
                              self._others(kb, {p.id for p in chosen}))
        reference = HFGenerator(gen_cfg, adapter=str(parent)) if parent else self._teacher()
        before, after = score(reference, probes), score(HFGenerator(gen_cfg, adapter=str(tmp)), probes)
        metrics: dict[str, Any] = compare(before, after)
        promote, reason = decide(metrics, cfg)
        metrics |= {"probes": after["counts"], "train": asdict(trained),
                    "examples": {k: sum(e.kind == k for e in examples) for k in kinds},
                    "held_out": sum(e.split == "holdout" for e in examples)}
        covered = {**(registry.covered() if parent and (cfg.continue_active or cfg.replay) else {}),
                   **{pid: round(v, 4) for pid, v in after["passages"].items()}}
        manifest = {
            "id": adapter_id, "base_model": gen_cfg.model, "parent": parent.name if parent else None,
            "created": time.time(), "passages": covered, "data_hash": data_hash, "data_kinds": kinds,
            "settings": cfg.model_dump(), "metrics": metrics, "promoted": promote, "reason": reason,
        }
        final = registry.finish(tmp, manifest, activate=promote)
        return DistillReport(promote, final.name, metrics, reason, passages=len(chosen))

    def _others(self, kb: KnowledgeBase, exclude: set[str]) -> list[Passage]:
        """A seeded sample of passages that this round does not distil (for the regression probes)."""
        ids = [pid for pid, _ in kb.store.live_texts() if pid not in exclude]
        sample = random.Random(self.config.seed).sample(ids, min(self.other_passages, len(ids)))
        found = kb.store.get_passages(sample)
        return [found[i] for i in sample if i in found]


def maybe_schedule(settings: Settings) -> bool:
    """Start ``rag distill --if-due`` in a background process when a round is due and none runs; True if started.

    The child reads ``./config.toml`` (like any ``rag`` command) and gets the KB path with ``--kb``; its output
    goes to ``<kb>/adapters/last-round.log``.
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
    with open(root / "adapters" / "last-round.log", "w", encoding="utf-8") as out:
        subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--kb", str(root), "distill", "--if-due", "--json"],
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return True
