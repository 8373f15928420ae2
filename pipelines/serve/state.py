"""What the server shares between requests: one QA pipeline (one embedder, one LLM), the lock that serialises
generation, and the background jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.serve.jobs import JobManager
from pipelines.serve.security import api_key

RAG_MAIN = "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"  # `rag` in this interpreter


class ServerState:
    """The one loaded model and the jobs; ``lock`` is held for a whole ask (retrieve, generate, log).

    The lock also guards swapping the pipeline (after an adapter change): the old LLM is dropped before the new
    one loads, so two models are never in memory at once.

    Example:
        >>> state = ServerState(Settings(), config_path=None)
        >>> state.qa.ask("Who built the lighthouse?").text  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, config_path: str | None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.key = api_key(settings.serve)
        self.lock = threading.Lock()
        self.jobs = JobManager()
        self._qa: Any = None
        self._embedder: LockedEmbedder | None = None

    @property
    def qa(self) -> Any:
        """The shared ``QAPipeline``, opened on first use (the KB may still be empty when the server starts)."""
        if self._qa is None:
            from pipelines.qa import QAPipeline

            self._qa = QAPipeline.from_config(self.settings, embedder=self.embedder())
        return self._qa

    def embedder(self) -> LockedEmbedder:
        """The one embedder, shared by the QA pipeline and ingest jobs (loaded on first use)."""
        if self._embedder is None:
            from rag.embedding.embed import SentenceTransformerEmbedder

            self._embedder = LockedEmbedder(SentenceTransformerEmbedder(self.settings.embedding))
        return self._embedder

    def reload_model(self) -> None:
        """Reopen the pipeline after the active adapter changed; call with ``lock`` held."""
        if self._qa is None:
            return
        self._qa.close()
        self._qa = None  # drop the old LLM before the new one loads
        self.qa  # noqa: B018 - load the new one now, not in the next ask

    def backend(self) -> dict[str, Any]:
        if self._qa is None:
            return {"loaded": False, "model": self.settings.generation.model}
        gen = self._qa.generator
        return {"loaded": True, "model": gen.model_id, "adapter": gen.adapter_id, "backend": type(gen).__name__}

    def run_distill(self) -> dict[str, Any]:
        """A distillation round in a child process: training never blocks asks, and its memory goes when it ends."""
        cmd = [sys.executable, "-c", RAG_MAIN, "--kb", str(Path(self.settings.kb.path).resolve())]
        if self.config_path:
            cmd += ["--config", self.config_path]
        done = subprocess.run(cmd + ["distill", "--json"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"rag distill exited {done.returncode}")
        report = json.loads(done.stdout)
        if report.get("promoted"):
            with self.lock:
                self.reload_model()
        return report

    def close(self) -> None:
        self.jobs.shutdown()
        if self._qa is not None:
            self._qa.close()


class LockedEmbedder:
    """The one embedder, shared by asks and ingest jobs; tokenizer and model calls take turns (HF fast
    tokenizers fail with 'Already borrowed' when two threads use one), in slices so an ask waits one batch."""

    def __init__(self, embedder: Any, slice_size: int = 64) -> None:
        self._inner = embedder
        self._lock = threading.Lock()
        self._slice = slice_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed(self, texts: Any, **kwargs: Any) -> Any:
        import numpy as np

        parts = []
        for i in range(0, len(texts), self._slice):
            with self._lock:
                parts.append(self._inner.embed(texts[i : i + self._slice], **kwargs))
        return np.concatenate(parts) if parts else self._inner.embed([], **kwargs)

    def embed_queries(self, queries: Any) -> Any:
        with self._lock:
            return self._inner.embed_queries(queries)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._inner.count_tokens(text)

    def count_tokens_batch(self, texts: Any) -> list[int]:
        with self._lock:
            return self._inner.count_tokens_batch(texts)
