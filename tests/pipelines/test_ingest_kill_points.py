"""kill -9 at 10 chosen points of an ingest (from its progress events): after each kill the KB opens consistent,
readers see the same passages in FAISS and BM25, and the next run resumes where the killed one stopped.

The points cover every step that writes the KB: after a file is chunked into SQLite, between saving FAISS and
recording its ids in SQLite, after a checkpoint, after BM25 was synced in memory, and after it was saved.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.kb import KnowledgeBase

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("ingest_child.py")
WORDS = "tide harbour kiln glaze ferry lighthouse otter granite moss weather school mill".split()
# (event, occurrence in that run) where each run is killed; the runs share one KB, so each resumes the last
KILL_POINTS = [("file", 2), ("vectors_saved", 1), ("checkpoint", 1), ("file", 5), ("vectors_saved", 2),
               ("checkpoint", 3), ("file", 9), ("bm25_synced", 1), ("vectors_saved", 1), ("bm25_saved", 1)]


def _corpus(folder: Path, n_files: int = 16) -> int:
    folder.mkdir()
    for i in range(n_files):
        sentences = [" ".join(f"{WORDS[(i * 5 + j + s) % len(WORDS)]}{i}x{s}" for j in range(10)) + "."
                     for s in range(6)]
        (folder / f"doc{i:02d}.txt").write_text(f"Document {i}.\n\n" + "\n\n".join(sentences) + "\n")
    return n_files


def _run(kb: Path, corpus: Path, kill_at: tuple[str, int] | None) -> dict | None:
    """One ingest; killed with SIGKILL at ``kill_at`` (or at its last event), else its report."""
    proc = subprocess.Popen([sys.executable, str(CHILD), str(kb), str(corpus)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen: dict[str, int] = {}
    try:
        for line in proc.stdout:
            message = json.loads(line)
            if "report" in message:
                return message["report"]
            name = message["event"]
            seen[name] = seen.get(name, 0) + 1
            last = name == "bm25_saved"  # a killed run never gets past its final save
            if kill_at is not None and ((name, seen[name]) == kill_at or last):
                os.kill(proc.pid, signal.SIGKILL)
                return None
            proc.stdin.write("\n")
            proc.stdin.flush()
    finally:
        proc.kill()
        proc.wait()
    raise AssertionError("the child ended without a report")


def _reader_agrees(kb: Path) -> bool:
    """Right after the kill, before any writer repairs: every vector SQLite records is in FAISS (FAISS is saved
    first), and BM25 holds exactly the embedded passages, so dense and sparse retrieval see the same passages."""
    with KnowledgeBase.open(kb) as reader:
        sql = reader.store.vector_map()
        return set(sql) <= set(reader.vectors.ids().tolist()) and set(reader.bm25.ids()) == set(sql.values())


def _repaired(kb: Path) -> dict:
    with KnowledgeBase.open(kb, write=True) as kb_:
        sql = kb_.store.vector_map()
        assert set(kb_.vectors.ids().tolist()) == set(sql)
        assert set(kb_.bm25.ids()) == set(sql.values())
        return {**kb_.store.counts(), "done": sum(s.status == "done" for s in kb_.store.sources())}


def test_kill_9_at_ten_points_then_resume(tmp_path: Path) -> None:
    corpus, kb = tmp_path / "docs", tmp_path / "kb"
    n_files = _corpus(corpus)
    history = []
    for point in KILL_POINTS:
        assert _run(kb, corpus, point) is None
        assert _reader_agrees(kb), point
        history.append(_repaired(kb))
    assert len(history) == len(KILL_POINTS) >= 10
    assert [h["embedded"] for h in history] == sorted(h["embedded"] for h in history)  # work is never lost
    before = history[-1]
    report = _run(kb, corpus, None)
    final = _repaired(kb)
    assert report["failed"] == [] and final["done"] == n_files
    assert final["passages"] == final["embedded"]
    assert report["embedded"] == final["embedded"] - before["embedded"]  # only what was lost is redone
    assert report["unchanged"] == before["done"]  # finished sources are not read again
