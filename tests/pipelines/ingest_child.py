"""Child process of the kill -9 harness (tests/pipelines/test_ingest_kill_points.py); not a test module.

Runs a real ``IngestPipeline`` (real loaders, spaCy chunking, SQLite, FAISS, BM25) with a hashing embedder so that
a process starts in about a second instead of the half minute MiniLM takes here: the harness checks the KB's
files, not embedding quality (tests/pipelines/test_ingest_crash.py kills an ingest that uses the real MiniLM).
Each progress event is printed as one line, then the child waits for the parent's go-ahead on stdin, so the
parent can kill it exactly at that event.

Usage: python tests/pipelines/ingest_child.py KB CORPUS
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence

# the hashing embedder needs no torch; without this, spaCy's thinc imports it and doubles the start-up time
sys.modules.setdefault("torch", None)  # type: ignore[arg-type]

import numpy as np  # noqa: E402

from pipelines.config import Settings  # noqa: E402
from pipelines.ingest import IngestPipeline  # noqa: E402


class HashEmbedder:
    """Deterministic 32-d unit vectors from a text hash; tokens are whitespace words."""

    model_id = "hash-test"
    dimension = 32

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def embed(self, texts: Sequence[str], **_: object) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8).astype(np.float32) for t in texts]
        vectors = np.stack(rows) - 127.5 if rows else np.zeros((0, 32), np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main(kb: str, corpus: str) -> None:
    settings = Settings().override({"kb.path": kb, "embedding.model": "hash-test", "ingest.batch_passages": 8,
                                    "ingest.checkpoint_seconds": 0.0, "ingest.show_progress": False,
                                    "preprocess.max_tokens": 24})
    pipeline = IngestPipeline(settings, embedder=HashEmbedder())

    def step(name: str) -> None:
        print(json.dumps({"event": name}), flush=True)
        sys.stdin.readline()  # wait for the go-ahead: the parent may kill us here instead

    pipeline.on_event = step
    report = pipeline.run([corpus])
    print(json.dumps({"report": report.to_dict()}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
