"""Ingest with the real bundled embedder: the sample corpus, incremental updates, removal, hostile inputs."""

import shutil
from pathlib import Path

import pytest

from knowledge.kb import KnowledgeBase
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline
from pipelines.kb_admin import remove_sources, status

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"


def _settings(kb: Path, **over) -> Settings:
    return Settings().override({"kb.path": str(kb), "ingest.show_progress": False, **over})


def _consistent(kb_path: Path) -> dict:
    """Every vector has its passage and back, BM25 holds exactly the embedded passages."""
    with KnowledgeBase.open(kb_path) as kb:
        sql = kb.store.vector_map()
        assert set(kb.vectors.ids().tolist()) == set(sql)
        assert set(kb.bm25.ids()) == set(sql.values())
        return kb.store.counts()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE, folder)
    return folder


def test_sample_corpus_ingests_every_format(tmp_path, corpus, embedder):
    report = IngestPipeline.from_config(_settings(tmp_path / "kb"), embedder=embedder).run([corpus])
    assert report.failed == [] and report.added == len(list(corpus.iterdir()))
    assert report.embedded == report.passages > 0
    counts = _consistent(tmp_path / "kb")
    assert counts["passages"] == counts["embedded"] == report.passages
    info = status(_settings(tmp_path / "kb"))
    assert info["vectors"] == report.passages and info["index_type"] == "flat"
    assert info["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["disk_bytes"] > 0


def test_reingest_embeds_nothing_and_changes_replace_passages(tmp_path, corpus, embedder):
    pipe = IngestPipeline.from_config(_settings(tmp_path / "kb"), embedder=embedder)
    first = pipe.run([corpus])
    again = pipe.run([corpus])
    assert (again.added, again.updated, again.embedded) == (0, 0, 0)
    assert again.unchanged == first.added and again.passages == first.passages
    target = corpus / "ferry_service.txt"
    target.write_text(target.read_text() + "\nA new night ferry to Port Caskel leaves at 23:40 on Fridays.\n")
    changed = pipe.run([corpus])
    assert changed.updated == 1 and changed.unchanged == first.added - 1
    assert 0 < changed.embedded <= 3  # only the chunks whose text changed
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        found = kb.bm25.search("night ferry 23:40 Port Caskel", 1)
        assert kb.store.get_passages([found[0][0]])[found[0][0]].source == str(target)
    _consistent(tmp_path / "kb")


def test_a_new_loader_version_reads_unchanged_files_again_and_embeds_only_new_text(tmp_path, corpus, embedder,
                                                                                    monkeypatch):
    """Files the loaders now read differently are read again on the next ingest, not skipped as unchanged; their
    passages whose text is the same keep their vectors."""
    pipe = IngestPipeline.from_config(_settings(tmp_path / "kb"), embedder=embedder)
    first = pipe.run([corpus])
    monkeypatch.setattr("pipelines.ingest.LOADER_VERSION", 1_000)
    again = pipe.run([corpus])
    assert again.unchanged == 0 and again.updated == first.added
    assert again.embedded == 0 and again.passages == first.passages
    assert pipe.run([corpus]).unchanged == first.added
    _consistent(tmp_path / "kb")


def test_remove_and_prune_leave_the_index(tmp_path, corpus, embedder):
    settings = _settings(tmp_path / "kb")
    pipe = IngestPipeline.from_config(settings, embedder=embedder)
    full = pipe.run([corpus])
    result = remove_sources(settings, [corpus / "weather_station.txt"])
    assert result["removed"] == 1 and result["passages"] < full.passages
    (corpus / "school_history.txt").unlink()
    pruned = pipe.run([corpus], prune=True)
    assert pruned.removed == 1 and pruned.added == 1  # weather_station.txt comes back, school_history goes
    counts = _consistent(tmp_path / "kb")
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        paths = {s.path for s in kb.store.sources()}
    assert str(corpus / "school_history.txt") not in paths and counts["sources"] == len(list(corpus.iterdir()))


def test_hostile_inputs_fail_one_by_one_and_lose_nothing(tmp_path, corpus, embedder):
    settings = _settings(tmp_path / "kb", **{"ingest.max_line_chars": 5000})
    pipe = IngestPipeline.from_config(settings, embedder=embedder)
    before = pipe.run([corpus])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (bad / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (bad / "empty.md").write_text("")
    (bad / "huge.txt").write_text("x" * 6000)
    (bad / "rows.jsonl").write_text('{"id": "1", "text": "Fine row about otters."}\n{broken\n')
    (bad / "loop").symlink_to(bad)
    (bad / "notes.docx").write_text("unsupported")
    # a source that was good and now is corrupt keeps what it had
    (corpus / "ferry_service.txt").write_bytes(b"\xff\xfe broken now")
    report = pipe.run([corpus, bad, tmp_path / "missing.txt"])
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert {"binary.txt", "latin1.txt", "huge.txt", "missing.txt", "ferry_service.txt"} <= set(failed)
    assert "utf-8" in failed["latin1.txt"].lower() and "empty.md" not in failed and report.no_text == 1
    assert any("empty.md: file is empty" in w for w in report.warnings)
    assert any("line 2" in w for w in report.warnings)
    assert any(Path(s["path"]).name == "notes.docx" for s in report.skipped)
    assert report.passages >= before.passages + 1  # the good JSONL row is in, nothing was lost
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        top = kb.bm25.search("Fine row about otters", 1)[0][0]
        assert kb.store.get_passages([top])[top].doc_id.endswith("rows.jsonl#1")
        ferry = kb.store.source(str(corpus / "ferry_service.txt"))
        assert ferry.n_passages > 0 and ferry.error
    _consistent(tmp_path / "kb")
