"""EvalJob with the real ingest and QA pipelines and the bundled models: a rerun gives identical metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings
from pipelines.evaluate import EvalJob

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _quality(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not any(t in k for t in ("latency", "rss", "per_s"))}


def _answers(run_dir: Path) -> list[tuple[str, str, str]]:
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return sorted((r["mode"], r["id"], r.get("answer", "")) for r in rows)


def test_real_job_reruns_identically(tmp_path: Path, embedder: Any, generator: Any) -> None:
    from pipelines.ingest import IngestPipeline
    from pipelines.qa import QAPipeline

    def ingest(settings: Settings, kb: Path, corpus: Path) -> None:
        IngestPipeline.from_config(settings, kb=kb, embedder=embedder).run([corpus])

    def factory(settings: Settings, kb: Path | None, adapter: str | None) -> QAPipeline:
        return QAPipeline.from_config(settings, kb=kb, embedder=embedder, generator=generator)

    settings = Settings().override({"eval.runs_dir": str(tmp_path / "runs"), "eval.k_values": [1, 5],
                                    "ingest.show_progress": False})
    common = {"show_progress": False, "pipeline_factory": factory, "ingest": ingest}
    first = EvalJob(FIX / "beir", settings, name="ret1", **common).run()
    second = EvalJob(FIX / "beir", settings, name="ret2", **common).run()
    assert _quality(first.metrics) == _quality(second.metrics)
    assert first.metrics["sparse/recall@5"] > 0.5  # the fixture queries share words with their documents
    kb = next((tmp_path / "runs" / "kbs").iterdir())
    # generation is the slow part on a shared CPU: one generated question, closed-book and with retrieval
    qa = [EvalJob(FIX / "qa.jsonl", settings, modes=["closed", "rag"], kb=kb, limit=1, seed=1, name=f"qa{i}",
                  **common).run() for i in range(2)]
    assert qa[0].counts["records"] == 2 and "rag/f1" in qa[0].metrics
    assert _quality(qa[0].metrics) == _quality(qa[1].metrics)
    assert _answers(qa[0].run_dir) == _answers(qa[1].run_dir)
