"""`rag eval`: a batch evaluation job — retrieval, answers and distillation — with a run folder of results.

Example:
    >>> report = EvalJob("../shared/data/scifact", Settings(), modes=["sparse", "hybrid"]).run()  # doctest: +SKIP
    >>> report.metrics["hybrid/ndcg@10"]  # doctest: +SKIP
    0.69
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipelines.config import Settings
from pipelines.evaluate import report as eval_report
from pipelines.evaluate.data import EvalDataset, EvalQuery, load_dataset
from pipelines.evaluate.modes import (ANSWER_MODES, RETRIEVAL_MODES, EvalPipeline, answer_batch, answer_metrics,
                                  base_mode, retrieval_batch, retrieval_metrics)

PipelineFactory = Callable[[Settings, "Path | None", "str | None"], EvalPipeline]
IngestFn = Callable[[Settings, Path, Path], None]
JOB_KEYS = {"dataset", "format", "split", "limit", "seed", "modes", "name", "adapter", "scoring", "kb", "resume"}
# the TOML type each job key must have, so a wrong one is named with its file instead of failing later
JOB_TYPES: dict[str, tuple[type, ...]] = {"dataset": (str,), "format": (str,), "split": (str,), "limit": (int,),
                                          "seed": (int,), "modes": (list,), "name": (str,), "adapter": (str,),
                                          "scoring": (str,), "kb": (str,), "resume": (bool, str)}


class JobFileError(ValueError):
    """A job file is unreadable or one of its fields is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class EvalReport:
    """The outcome of a job: flat metrics (``mode/metric`` and un-prefixed primary-mode keys), where it was written."""

    name: str
    run_dir: Path
    metrics: dict[str, float | None]
    counts: dict[str, int]
    primary_mode: str
    fingerprint: str
    warnings: tuple[str, ...] = ()
    modes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "run_dir": str(self.run_dir), "metrics": self.metrics, "counts": self.counts,
                "primary_mode": self.primary_mode, "fingerprint": self.fingerprint, "modes": list(self.modes),
                "warnings": list(self.warnings)}


class EvalJob:
    """Evaluate a dataset in several modes and write ``runs/<stamp>-<name>/``.

    Args:
        dataset: a BEIR folder, a QA JSONL file or the PubMedQA folder.
        settings: the whole configuration; ``settings.eval`` gives runs_dir, batch_size, seed and k_values.
        modes: any of sparse/dense/hybrid (retrieval) and closed/rag/oracle (answers); default by dataset kind.
        adapter: a LoRA adapter folder; answer modes also run with it (``closed+adapter`` ...).
        scoring: ``choice`` (next-token choice among yes/no/maybe), ``generate`` (parse the generated text) or
            ``auto`` (choice for label datasets).
        resume: True continues the latest run of this job (same fingerprint); a path continues that run folder.
    """

    def __init__(self, dataset: str | Path, settings: Settings, *, modes: Sequence[str] | None = None,
                 split: str | None = None, limit: int | None = None, seed: int | None = None,
                 name: str | None = None, adapter: str | None = None, format: str | None = None,
                 scoring: str = "auto", resume: bool | str | Path = False, kb: str | Path | None = None,
                 show_progress: bool = True, pipeline_factory: PipelineFactory | None = None,
                 ingest: IngestFn | None = None, engine: str = "local", address: str | None = None) -> None:
        if scoring not in ("auto", "choice", "generate"):
            raise ValueError(f"scoring must be auto, choice or generate, got {scoring!r}")
        bad = [m for m in modes or () if m not in RETRIEVAL_MODES + ANSWER_MODES]
        if bad:
            raise ValueError(f"unknown mode {bad[0]!r}; choose from {RETRIEVAL_MODES + ANSWER_MODES}")
        self.dataset, self.settings, self.modes = Path(dataset), settings, list(modes or [])
        self.split, self.limit, self.format, self.name = split, limit, format, name
        self.seed = settings.eval.seed if seed is None else seed
        self.adapter, self.scoring, self.resume, self.kb = adapter, scoring, resume, kb
        self.show_progress = show_progress
        if engine not in ("local", "ray"):
            raise ValueError(f"engine must be local or ray, got {engine!r}")
        self.engine, self.address = engine, address  # ray: batches of queries go to Ray workers
        self.pipeline_factory = pipeline_factory or _qa_pipeline
        self.ingest = ingest or _ingest
        self.runs_dir = Path(settings.eval.runs_dir).expanduser()

    @classmethod
    def from_toml(cls, path: str | Path, settings: Settings, **overrides: Any) -> EvalJob:
        """A repeatable job file: ``dataset``, ``modes``, ``split``, ``limit``, ... (overrides win when not None)."""
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise JobFileError(f"{file}: cannot read job file ({exc})") from None
        _check_job(file, data)
        data |= {k: v for k, v in overrides.items() if v is not None and v is not False and v != []}
        if "dataset" not in data:
            raise JobFileError(f"{file}: a job needs 'dataset' (a BEIR folder, QA .jsonl or PubMedQA folder)")
        dataset = Path(data.pop("dataset")).expanduser()
        show_progress = data.pop("show_progress", True)
        try:
            return cls(dataset if dataset.is_absolute() else file.parent / dataset, settings,
                       show_progress=show_progress, **data)
        except ValueError as exc:  # e.g. an unknown mode or scoring: say which file it came from
            raise JobFileError(f"{file}: {exc}") from None

    # ---- the job ------------------------------------------------------------------------------------------------

    def run(self) -> EvalReport:
        """Load, (ingest), evaluate every mode batch by batch (resumable), then write metrics, report and plots."""
        ds = load_dataset(self.dataset, self.format, self.split, self.limit, self.seed)
        modes = self._resolve_modes(ds)
        scoring = self.scoring if self.scoring != "auto" else ("choice" if ds.has_labels else "generate")
        name = self.name or f"{ds.name}-{ds.split}"
        kb = self._prepare_kb(ds, name)
        fingerprint = self._fingerprint(ds, modes, scoring, kb)
        run_dir = self._run_dir(name, fingerprint)
        _seed_everything(self.seed)
        writer = eval_report.ResultsWriter(run_dir / "results.jsonl")
        self._evaluate(ds, modes, scoring, kb, writer)
        return self._finish(ds, modes, scoring, name, fingerprint, run_dir, writer.done())

    def _resolve_modes(self, ds: EvalDataset) -> list[str]:
        answerable = any(q.label or q.answers or q.unanswerable for q in ds.queries)
        modes = self.modes or (list(RETRIEVAL_MODES) if ds.kind == "beir" else
                               ["closed", "rag"] + (["oracle"] if any(q.gold_context for q in ds.queries) else []))
        for mode in modes:
            if mode in ANSWER_MODES and not answerable:
                raise ValueError(f"mode {mode!r} needs answers or labels; {self.dataset} has none")
            if mode in RETRIEVAL_MODES and not any(q.relevant for q in ds.queries):
                raise ValueError(f"mode {mode!r} needs relevance judgements (qrels/context_ids); {self.dataset} has none")
        if self.adapter:
            modes += [f"{m}+adapter" for m in modes if m in ANSWER_MODES]
        return list(dict.fromkeys(modes))

    def _prepare_kb(self, ds: EvalDataset, name: str) -> Path | None:
        """The job's own KB (BEIR corpus or generated PubMedQA corpus), reused when unchanged; else the user's."""
        if ds.corpus is None and not ds.corpus_rows:
            return Path(self.kb) if self.kb else None
        corpus = ds.corpus
        emb = json.dumps([self.settings.embedding.model_dump(), self.settings.preprocess.model_dump()], sort_keys=True)
        h = hashlib.sha256(emb.encode())
        if corpus is not None:
            h.update(corpus.read_bytes())
        else:
            rows = "\n".join(json.dumps(r, sort_keys=True) for r in ds.corpus_rows) + "\n"
            h.update(rows.encode())
        kb = (self.runs_dir / "kbs" / f"{ds.name}-{h.hexdigest()[:12]}").resolve()
        if corpus is None:
            corpus = kb / "sources" / f"{ds.name}.jsonl"
            if not corpus.exists():
                corpus.parent.mkdir(parents=True, exist_ok=True)
                corpus.write_text(rows, encoding="utf-8")
        self.ingest(self.settings, kb, corpus)
        return kb

    def _fingerprint(self, ds: EvalDataset, modes: list[str], scoring: str, kb: Path | None) -> str:
        h = hashlib.sha256(self.settings.model_dump_json().encode())
        h.update(json.dumps([modes, scoring, ds.split, self.limit, self.seed, self.adapter,
                             self.settings.embedding.model, self.settings.generation.model]).encode())
        for path in ds.files:
            h.update(path.read_bytes())
        if kb is not None and (kb / "manifest.json").exists():
            h.update((kb / "manifest.json").read_bytes())
        h.update(_adapter_digest(self.adapter))
        return h.hexdigest()

    def _run_dir(self, name: str, fingerprint: str) -> Path:
        if self.resume:
            run_dir = _find_resumable(self.runs_dir, name, fingerprint, self.resume)
        else:
            run_dir = _new_run_dir(self.runs_dir, name)
        (run_dir / "job.json").write_text(json.dumps({"fingerprint": fingerprint, "name": name}), encoding="utf-8")
        return run_dir

    def _evaluate(self, ds: EvalDataset, modes: list[str], scoring: str, kb: Path | None,
                  writer: eval_report.ResultsWriter) -> None:
        if self.engine == "ray":
            from pipelines.evaluate.ray import evaluate_on_ray

            return evaluate_on_ray(self, ds, modes, scoring, kb, writer)
        done = {(r["mode"], r["id"]) for r in writer.done()}
        pipes: dict[bool, EvalPipeline] = {}
        for mode in modes:
            todo = [q for q in ds.queries if (mode, q.id) not in done]
            if not todo:
                continue
            with_adapter = mode.endswith("+adapter")
            if with_adapter not in pipes:
                pipes[with_adapter] = _warm_up(self.pipeline_factory(self.settings, kb, self.adapter if with_adapter else None))
            self._run_mode(pipes[with_adapter], mode, todo, scoring, writer)
        for pipe in pipes.values():
            getattr(pipe, "close", lambda: None)()

    def _run_mode(self, pipe: EvalPipeline, mode: str, todo: list[EvalQuery], scoring: str,
                  writer: eval_report.ResultsWriter) -> None:
        size = self.settings.eval.batch_size
        bar = tqdm(total=len(todo), desc=f"eval {mode}", unit="q", disable=not self.show_progress)
        for i in range(0, len(todo), size):
            batch = todo[i : i + size]
            if base_mode(mode) in RETRIEVAL_MODES:
                records = retrieval_batch(pipe, batch, mode, self.settings.eval.k_values)
            else:
                records = answer_batch(pipe, batch, mode, scoring)
            writer.append(records)
            bar.update(len(batch))
        bar.close()

    def _finish(self, ds: EvalDataset, modes: list[str], scoring: str, name: str, fingerprint: str,
                run_dir: Path, records: list[dict[str, Any]]) -> EvalReport:
        wanted = {q.id for q in ds.queries}
        by_mode = {m: [r for r in records if r["mode"] == m and r["id"] in wanted] for m in modes}
        metrics = flat_metrics(by_mode)
        primary = _primary(modes)
        metrics |= {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(primary + "/")}
        metrics["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts = {"queries": len(ds.queries), "records": sum(len(v) for v in by_mode.values()),
                  "warnings": len(ds.warnings)}
        latencies = {m: [r["latency_s"] for r in v] for m, v in by_mode.items()}
        plots = eval_report.write_plots(run_dir, metrics, modes, latencies)
        info = {"name": name, "dataset": str(self.dataset), "kind": ds.kind, "split": ds.split, "modes": modes,
                "primary_mode": primary, "scoring": scoring, "fingerprint": fingerprint, "metrics": metrics,
                "counts": counts, "warnings": list(ds.warnings), "plots": [p.name for p in plots],
                "seed": self.seed, "limit": self.limit, "adapter": self.adapter, "has_labels": ds.has_labels,
                "examples": eval_report.pick_examples(by_mode.get(primary, []))}
        eval_report.write_metrics(run_dir, info)
        eval_report.write_report_md(run_dir, info)
        return EvalReport(name, run_dir, metrics, counts, primary, fingerprint, ds.warnings, tuple(modes))


def _check_job(file: Path, data: dict[str, Any]) -> None:
    unknown = set(data) - JOB_KEYS
    if unknown:
        raise JobFileError(f"{file}: unknown job key {sorted(unknown)[0]!r}; allowed: {sorted(JOB_KEYS)}")
    for key, value in data.items():
        kinds = JOB_TYPES[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(k.__name__ for k in kinds)
            raise JobFileError(f"{file}: job key '{key}' must be a {want}, got {value!r}")
    if "modes" in data and not all(isinstance(m, str) for m in data["modes"]):
        raise JobFileError(f"{file}: job key 'modes' must be a list of mode names, got {data['modes']!r}")


def flat_metrics(by_mode: dict[str, list[dict[str, Any]]]) -> dict[str, float | None]:
    """``mode/metric`` keys for every mode, plus the distillation recovery ratio when an adapter ran."""
    out: dict[str, float | None] = {}
    for mode, records in by_mode.items():
        if not records:
            continue
        values = retrieval_metrics(records) if base_mode(mode) in RETRIEVAL_MODES else answer_metrics(records)
        out |= {f"{mode}/{k}": v for k, v in values.items()}
    if {"closed", "rag", "closed+adapter"} <= set(by_mode):
        key = "accuracy" if "closed/unparsed" in out or "closed/f1" not in out else "f1"
        out["recovery_ratio"] = recovery_ratio(out[f"closed/{key}"], out[f"closed+adapter/{key}"], out[f"rag/{key}"])
    return out


def recovery_ratio(closed: float | None, closed_adapter: float | None, rag: float | None) -> float | None:
    """(closed-book with adapter − closed-book base) / (open-book base − closed-book base); None when open-book is
    no better than closed-book (there is no gap to recover, and dividing by it would turn a loss into a "gain")."""
    if closed is None or closed_adapter is None or rag is None or rag <= closed:
        return None
    return (closed_adapter - closed) / (rag - closed)


def _primary(modes: Sequence[str]) -> str:
    for mode in ("hybrid", "rag"):
        if mode in modes:
            return mode
    return modes[0]


def _warm_up(pipe: EvalPipeline) -> EvalPipeline:
    """Load the lazy models now, so that loading time is not counted as the first batch's latency."""
    for part in (pipe.generator, getattr(pipe.retriever, "embedder", None)):
        getattr(part, "model", None)
    return pipe


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _adapter_digest(adapter: str | None) -> bytes:
    if not adapter:
        return b""
    folder = Path(adapter)
    files = sorted(folder.rglob("*")) if folder.is_dir() else []
    h = hashlib.sha256(adapter.encode())
    for f in files:
        if f.is_file() and f.suffix in (".json", ".safetensors"):
            h.update(f.read_bytes())
    return h.digest()


def _new_run_dir(runs_dir: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        run_dir = runs_dir / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise ValueError(f"too many runs named {name!r} in one second under {runs_dir}")


def _find_resumable(runs_dir: Path, name: str, fingerprint: str, resume: bool | str | Path) -> Path:
    candidates = [Path(resume)] if not isinstance(resume, bool) else sorted(runs_dir.glob(f"*-{name}"), reverse=True)
    for run_dir in candidates:
        job = run_dir / "job.json"
        if job.exists() and json.loads(job.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
            return run_dir
    if not isinstance(resume, bool):
        raise ValueError(f"cannot resume {resume}: not a run folder of this job (other settings, data or modes)")
    raise ValueError(f"nothing to resume: no run of '{name}' under {runs_dir} with the same settings and data")


def _qa_pipeline(settings: Settings, kb: Path | None, adapter: str | None) -> EvalPipeline:
    """The real QA pipeline; without ``adapter`` it is the bare base model (not the KB's active adapter)."""
    from pipelines.qa import QAPipeline  # heavy; only when a real job runs
    from rag.generation.generate import HFGenerator

    if adapter:
        return QAPipeline.from_config(settings, kb=kb, adapter=adapter)
    base = settings.override({"generation.adapter": None})
    return QAPipeline.from_config(base, kb=kb, generator=HFGenerator(base.generation, adapter=None))


def _ingest(settings: Settings, kb: Path, corpus: Path) -> None:
    from pipelines.ingest import IngestPipeline

    report = IngestPipeline.from_config(settings, kb=kb).run([corpus])
    if report.failed:
        raise ValueError(f"ingest of {corpus} failed: {report.failed[0]}")
