"""`rag ingest --engine ray` on a local Ray started by the test: the KB equals a local ingest's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge.kb import KnowledgeBase
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.integration]
SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"


@pytest.fixture(scope="module")
def local_ray():
    from pipelines.ray_ingest import OFFLINE

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2,
             runtime_env={"env_vars": OFFLINE})
    yield ray
    ray.shutdown()


def _vectors_by_passage(kb_path: Path) -> dict[str, np.ndarray]:
    with KnowledgeBase.open(kb_path) as kb:
        mapping = kb.store.vector_map()
        ids = np.array(sorted(mapping), dtype=np.int64)
        return {mapping[int(v)]: row for v, row in zip(ids, kb.vectors.reconstruct(ids), strict=True)}


def test_ray_ingest_builds_the_same_kb_as_a_local_ingest(tmp_path, embedder, local_ray):
    from pipelines.ray_ingest import RayIngestPipeline

    settings = Settings().override({"ingest.show_progress": False})
    local = IngestPipeline(settings.override({"kb.path": str(tmp_path / "local")}), embedder=embedder).run([SAMPLE])
    remote = RayIngestPipeline(settings.override({"kb.path": str(tmp_path / "ray")}), embedder=embedder).run([SAMPLE])
    assert (remote.added, remote.passages, remote.embedded, remote.failed) == \
           (local.added, local.passages, local.embedded, local.failed) and remote.added == 11
    a, b = _vectors_by_passage(tmp_path / "local"), _vectors_by_passage(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == local.passages
    cosines = np.array([float(a[p] @ b[p]) for p in a])
    assert cosines.min() > 0.999, cosines.min()
    with KnowledgeBase.open(tmp_path / "local") as ka, KnowledgeBase.open(tmp_path / "ray") as kr:
        assert ka.store.vector_map() == kr.store.vector_map()  # same vector ids too: files committed in order
        assert sorted(ka.bm25.ids()) == sorted(kr.bm25.ids())
    again = RayIngestPipeline(settings.override({"kb.path": str(tmp_path / "ray")}), embedder=embedder).run([SAMPLE])
    assert again.unchanged == 11 and again.embedded == 0


def test_ray_ingest_reports_a_broken_file_like_the_local_ingest(tmp_path, embedder, local_ray):
    from pipelines.ray_ingest import RayIngestPipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Tides\n\nThe spring tide at Harrow reaches 5.2 metres.", encoding="utf-8")
    (docs / "bad.jsonl").write_text('{"id": "1", "text": "fine"}\n{not json\n', encoding="utf-8")
    settings = Settings().override({"ingest.show_progress": False})
    local = IngestPipeline(settings.override({"kb.path": str(tmp_path / "a")}), embedder=embedder).run([docs])
    remote = RayIngestPipeline(settings.override({"kb.path": str(tmp_path / "b")}), embedder=embedder).run([docs])
    assert [f["path"] for f in remote.failed] == [f["path"] for f in local.failed]
    assert remote.added == local.added and remote.passages == local.passages
