"""kill -9 in the middle of an ingest leaves a KB that opens consistent; the next run completes the work.

A concurrent `rag status` works while the ingest runs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.kb import KnowledgeBase
from pipelines.config import Settings
from pipelines.kb_admin import status

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _corpus(path: Path, n: int) -> None:
    words = "tide harbour kiln glaze ferry lighthouse otter granite moss weather school mill".split()
    with open(path, "w") as fh:
        for i in range(n):
            text = " ".join(f"{words[(i * 7 + j) % len(words)]}{i % 97}" for j in range(60)) + "."
            fh.write(json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": f"Record {i}. {text}"}) + "\n")


def _consistent(kb_path: Path) -> dict:
    with KnowledgeBase.open(kb_path, write=True) as kb:  # write: repairs what the kill left
        sql = kb.store.vector_map()
        assert set(kb.vectors.ids().tolist()) == set(sql)
        assert set(kb.bm25.ids()) == set(sql.values())
        return kb.store.counts()


def test_kill_9_mid_ingest_then_rerun(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    _corpus(corpus, 1500)
    kb = tmp_path / "kb"
    cfg = tmp_path / "c.toml"
    cfg.write_text("[ingest]\nbatch_passages = 64\ncheckpoint_seconds = 0.5\nshow_progress = false\n")
    cmd = [sys.executable, "-m", "pipelines.cli", "--config", str(cfg), "--kb", str(kb), "ingest", str(corpus)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    settings = Settings().override({"kb.path": str(kb)})
    seen_during = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if (kb / "vectors.faiss").exists():
            seen_during = status(settings)  # concurrent read while the writer works
            if 0 < seen_during["vectors"]:
                break
    assert proc.poll() is None, "ingest finished before it could be killed; make the corpus bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert seen_during is not None and seen_during["passages"] > 0
    partial = _consistent(kb)
    assert partial["embedded"] < 1500
    done = subprocess.run(cmd[:-1] + [str(corpus), "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["embedded"] == 1500 - partial["embedded"]  # only the work that was lost is redone
    final = _consistent(kb)
    assert final["passages"] == final["embedded"] == 1500
