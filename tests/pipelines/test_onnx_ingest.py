"""The sample corpus ingested and searched with ``embedding.runtime = "onnx-int8"`` (real MiniLM, real ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

from pipelines.config import Settings  # noqa: E402
from pipelines.ingest import IngestPipeline  # noqa: E402
from pipelines.qa import QAPipeline  # noqa: E402
from rag.embedding.embed import SentenceTransformerEmbedder  # noqa: E402

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"
CASES = {
    "How tall is the Gull Point lighthouse?": "gull_point_lighthouse.html",
    "How much electricity did the turbines on Ben Corrie generate in 2023?": "energy_cooperative_report_2023.pdf",
    "When was Aubrey Academy opened and who was its first teacher?": "school_history.txt",
    "What temperature does the Velmora kiln reach?": "velmora_ceramics.md",
}


def test_int8_ingest_finds_the_facts_in_dense_mode(tmp_path, embedder, generator) -> None:
    settings = Settings().override({"kb.path": str(tmp_path / "kb"), "ingest.show_progress": False,
                                    "embedding.runtime": "onnx-int8", "embedding.cache_dir": str(tmp_path / "cache"),
                                    "retrieval.mode": "dense"})
    int8 = SentenceTransformerEmbedder(settings.embedding)
    int8.__dict__["model"] = embedder.model  # the session's loaded model: no second load
    report = IngestPipeline.from_config(settings, embedder=int8).run([SAMPLE])
    assert not report.failed and report.embedded == report.passages > 0
    assert list((tmp_path / "cache" / "onnx").glob("*.int8.onnx"))  # the int8 graph did the embedding
    qa = QAPipeline.from_config(settings, embedder=int8, generator=generator)
    try:
        for question, source in CASES.items():
            top = qa.retriever.retrieve(question, k=3)
            assert source in [Path(h.passage.source).name for h in top], question
    finally:
        qa.close()
