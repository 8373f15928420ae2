"""Damaged or missing KB files: a clear error naming the file and `rag repair` (never a traceback, nothing rebuilt
silently), `rag check` finds each problem, `rag repair` rebuilds from SQLite keeping a copy, and the ask log
survives every repair that does not replace kb.sqlite itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from knowledge.kb import KnowledgeBase
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline
from pipelines.kb_admin import check_kb, repair_kb, status
from rag.errors import KnowledgeBaseError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(16_384))
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)


CORRUPTIONS = {
    "kb.sqlite zero bytes": ("kb.sqlite", lambda kb: (_garbage(kb / "kb.sqlite"), _truncate(kb / "kb.sqlite", 0))),
    "kb.sqlite garbage": ("kb.sqlite", lambda kb: _garbage(kb / "kb.sqlite")),
    "kb.sqlite truncated": ("kb.sqlite", lambda kb: _truncate(kb / "kb.sqlite", 4096)),
    "vectors.faiss truncated": ("vectors.faiss", lambda kb: _truncate(kb / "vectors.faiss", 1000)),
    "vectors.faiss zero bytes": ("vectors.faiss", lambda kb: _truncate(kb / "vectors.faiss", 0)),
    "vectors.faiss deleted": ("vectors.faiss", lambda kb: (kb / "vectors.faiss").unlink()),
    "manifest without embedding": ("manifest.json", lambda kb: (kb / "manifest.json").write_text('{"format_version": 1}')),
    "manifest invalid JSON": ("manifest.json", lambda kb: (kb / "manifest.json").write_text('{"format_version": 1,')),
    "manifest deleted": ("manifest.json", lambda kb: (kb / "manifest.json").unlink()),
    "bm25 CURRENT garbage": ("CURRENT", lambda kb: (kb / "bm25" / "CURRENT").write_text("garbage")),
    "bm25 version folder deleted": ("bm25", lambda kb: [shutil.rmtree(p) for p in (kb / "bm25").glob("v*")]),
}


@pytest.fixture
def kb_copy(tmp_path: Path, sample_kb: Path) -> Path:
    """A copy of the session's sample KB with one ask in its log (a checkpointed, closed copy)."""
    with KnowledgeBase.open(sample_kb) as kb:
        kb.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    target = tmp_path / "kb"
    shutil.copytree(sample_kb, target, ignore=shutil.ignore_patterns(".lock"))
    conn = sqlite3.connect(target / "kb.sqlite")
    conn.execute("CREATE TABLE IF NOT EXISTS asks(id TEXT PRIMARY KEY, ts REAL NOT NULL, query TEXT, "
                 "query_hash TEXT NOT NULL, path TEXT, answer TEXT, model TEXT, adapter TEXT)")
    conn.execute("INSERT INTO asks(id, ts, query, query_hash) VALUES('a1', 1.0, 'kiln?', 'h')")
    conn.commit()
    conn.close()
    return target


def _settings(kb: Path) -> Settings:
    return Settings().override({"kb.path": str(kb), "ingest.show_progress": False})


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_damage_is_one_clear_error_naming_the_file_and_repair(kb_copy: Path, case: str, capsys) -> None:
    name, damage = CORRUPTIONS[case]
    damage(kb_copy)
    code = main(["status", "--kb", str(kb_copy)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and name in err and "rag repair" in err and "Traceback" not in err


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_check_reports_each_damaged_file(kb_copy: Path, case: str) -> None:
    name, damage = CORRUPTIONS[case]
    damage(kb_copy)
    report = check_kb(_settings(kb_copy))
    assert not report.ok and any(name in p for p in report.problems)


def test_ingest_does_not_silently_rebuild_a_damaged_kb(kb_copy: Path, embedder) -> None:
    _truncate(kb_copy / "kb.sqlite", 0)
    with pytest.raises(KnowledgeBaseError, match="kb.sqlite is empty"):
        IngestPipeline.from_config(_settings(kb_copy), embedder=embedder).run([kb_copy / "nothing"])
    assert (kb_copy / "kb.sqlite").stat().st_size == 0  # left as it was for the user to decide


@pytest.mark.parametrize("case", ["vectors.faiss truncated", "vectors.faiss deleted", "manifest without embedding",
                                  "bm25 CURRENT garbage"])
def test_repair_rebuilds_from_sqlite_keeps_a_copy_and_the_ask_log(kb_copy: Path, case: str, embedder) -> None:
    before = check_kb(_settings(kb_copy)).counts
    CORRUPTIONS[case][1](kb_copy)
    result = repair_kb(_settings(kb_copy), embedder)
    after = check_kb(_settings(kb_copy))
    backups = list((kb_copy / "backups").iterdir())
    asks = sqlite3.connect(kb_copy / "kb.sqlite").execute("SELECT COUNT(*) FROM asks").fetchone()[0]
    assert (result["ok"], after.ok, after.counts["vectors"], after.counts["bm25"], asks, len(backups)) == (
        True, True, before["passages"], before["passages"], 1, 1)


def test_repair_of_a_garbage_database_sets_it_aside(kb_copy: Path, embedder) -> None:
    _garbage(kb_copy / "kb.sqlite")
    result = repair_kb(_settings(kb_copy), embedder)
    kept = Path(result["backup"]) / "kb.sqlite"
    assert result["ok"] and kept.stat().st_size == 16_384 and status(_settings(kb_copy))["passages"] == 0


def test_status_warns_when_counts_differ(kb_copy: Path) -> None:
    with KnowledgeBase.open(kb_copy) as kb:
        victim = kb.store.vector_map()
    with KnowledgeBase.open(kb_copy, write=True) as kb:  # drop one vector behind SQLite's back
        import numpy as np

        kb.vectors.remove(np.array([min(victim)], dtype=np.int64))
        kb.vectors.save()
    info = status(_settings(kb_copy))
    assert any("vectors.faiss holds" in w for w in info["warnings"])
