"""`rag eval --engine ray`: queries sharded over local Ray actors give the metrics of a local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import Settings
from pipelines.evaluate import EvalJob

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.integration]
BEIR = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "beir"


@pytest.fixture(scope="module")
def local_ray():
    from pipelines.ray_ingest import OFFLINE

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2,
             runtime_env={"env_vars": OFFLINE})
    yield ray
    ray.shutdown()


def test_ray_eval_shards_queries_and_matches_local_metrics(tmp_path, embedder, generator, local_ray):
    from pipelines.qa import QAPipeline

    # batches of 2 queries, so the 5 fixture queries really are spread over both workers
    settings = Settings().override({"eval.runs_dir": str(tmp_path / "runs"), "eval.batch_size": 2,
                                    "ingest.show_progress": False})

    def local_factory(s, kb, adapter):  # noqa: ANN001, ANN202 - the session's loaded models
        return QAPipeline.from_config(s, kb=kb, embedder=embedder, generator=generator)

    modes = ["sparse", "dense", "hybrid"]
    local = EvalJob(BEIR, settings, modes=modes, show_progress=False, pipeline_factory=local_factory,
                    name="local").run()
    remote = EvalJob(BEIR, settings, modes=modes, show_progress=False, engine="ray", name="ray").run()
    assert remote.counts == local.counts and remote.counts["records"] == 15
    quality = {k: v for k, v in local.metrics.items() if "latency" not in k and "rss" not in k}
    assert quality and {k: remote.metrics[k] for k in quality} == pytest.approx(quality, abs=1e-9)
    assert local.metrics["hybrid/ndcg@10"] > 0.5  # a real retrieval result, not an empty one
    with pytest.raises(ValueError, match="engine"):
        EvalJob(BEIR, settings, engine="spark")
