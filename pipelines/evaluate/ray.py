"""`rag eval --engine ray`: the job's query batches are sharded over Ray actors, each holding its own pipeline.

Records come back in submission order and go through the same results writer, so metrics, report, resume and
fingerprint are those of a local run (only latencies differ). Actors are per adapter setting, like local pipes.

Example:
    >>> EvalJob("../shared/data/scifact", Settings(), engine="ray", address="auto").run()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from pipelines.config import Settings
from pipelines.evaluate.modes import RETRIEVAL_MODES, answer_batch, base_mode, retrieval_batch
from pipelines.ray_ingest import init_ray

if TYPE_CHECKING:
    from pipelines.evaluate import EvalJob
    from pipelines.evaluate.data import EvalDataset
    from pipelines.evaluate.report import ResultsWriter


class _EvalWorker:
    """One Ray actor: a pipeline built by the job's factory, seeded like the driver; models load on first use."""

    def __init__(self, settings_json: str, kb: Path | None, adapter: str | None, factory: Any, seed: int,
                 answers: bool) -> None:
        from pipelines.evaluate import _seed_everything, _warm_up

        _seed_everything(seed)
        self.pipe = factory(Settings.model_validate_json(settings_json), kb, adapter)
        if answers:
            _warm_up(self.pipe)

    def run(self, mode: str, batch: list, scoring: str, k_values: list[int]) -> list[dict[str, Any]]:
        if base_mode(mode) in RETRIEVAL_MODES:
            return retrieval_batch(self.pipe, batch, mode, k_values)
        return answer_batch(self.pipe, batch, mode, scoring)


def evaluate_on_ray(job: EvalJob, ds: EvalDataset, modes: list[str], scoring: str, kb: Path | None,
                    writer: ResultsWriter) -> None:
    """Run every mode's missing queries on Ray; write records in order as they arrive."""
    ray = init_ray(job.address or job.settings.serve.ray_address or None)
    kb = Path(kb).resolve() if kb else None  # workers may run in another folder (or on another machine)
    done = {(r["mode"], r["id"]) for r in writer.done()}
    pools: dict[bool, list[Any]] = {}
    size = job.settings.eval.batch_size
    try:
        for mode in modes:
            todo = [q for q in ds.queries if (mode, q.id) not in done]
            if not todo:
                continue
            batches = [todo[i : i + size] for i in range(0, len(todo), size)]
            pool = pools.setdefault(mode.endswith("+adapter"), _pool(ray, job, kb, mode, modes, len(batches)))
            refs = [pool[i % len(pool)].run.remote(mode, b, scoring, list(job.settings.eval.k_values))
                    for i, b in enumerate(batches)]
            bar = tqdm(total=len(todo), desc=f"eval {mode} (ray)", unit="q", disable=not job.show_progress)
            for ref, batch in zip(refs, batches, strict=True):
                writer.append(ray.get(ref))
                bar.update(len(batch))
            bar.close()
    finally:
        for pool in pools.values():
            for actor in pool:
                ray.kill(actor)


def _pool(ray: Any, job: EvalJob, kb: Path | None, mode: str, modes: list[str], n_batches: int) -> list[Any]:
    with_adapter = mode.endswith("+adapter")
    answers = any(base_mode(m) not in RETRIEVAL_MODES for m in modes)
    workers = max(1, min(n_batches, int(ray.cluster_resources().get("CPU", 1))))
    actor = ray.remote(num_cpus=1)(_EvalWorker)
    return [actor.remote(job.settings.model_dump_json(), kb, job.adapter if with_adapter else None,
                         job.pipeline_factory, job.seed, answers) for _ in range(workers)]
