"""Shared fixtures: the network is blocked, real bundled models are loaded once per session."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection (other than loopback/unix sockets) fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise RuntimeError(f"network access blocked in tests: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once."""
    from rag.config import EmbeddingConfig
    from rag.embedding.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(EmbeddingConfig())
    emb.model  # noqa: B018 - load now, once
    return emb


@pytest.fixture(scope="session")
def embedder_of(embedder):
    """``embedder_of(dtype)``: the bundled MiniLM in ``"float32"`` or ``"bfloat16"``, loaded once each.

    ``embedding.dtype = "auto"`` (the ``embedder`` fixture) is bf16 on CPUs with native bf16 and fp32 elsewhere; a
    test that compares numbers pins the precision it means, so every machine runs the same comparison.
    """
    from rag.config import EmbeddingConfig
    from rag.embedding.embed import SentenceTransformerEmbedder
    from rag.models import pick_dtype

    loaded = {}

    def get(dtype: str):
        if dtype not in loaded:
            if next(embedder.model.parameters()).dtype == pick_dtype(dtype):
                loaded[dtype] = embedder  # what auto picked on this CPU: no second load
            else:
                loaded[dtype] = SentenceTransformerEmbedder(EmbeddingConfig(dtype=dtype))
                loaded[dtype].model  # noqa: B018
        return loaded[dtype]

    return get


@pytest.fixture(scope="session")
def generator():
    """The real bundled SmolLM2-135M-Instruct, loaded once (GGUF -> safetensors cache on first use)."""
    from rag.config import GenerationConfig
    from rag.generation.generate import HFGenerator

    gen = HFGenerator(GenerationConfig(max_new_tokens=48))
    gen.model  # noqa: B018
    return gen


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory, embedder):
    """The bundled sample corpus ingested once with the real embedder; tests must not modify it."""
    from pathlib import Path

    from pipelines.config import Settings
    from pipelines.ingest import IngestPipeline

    kb = tmp_path_factory.mktemp("sample") / "kb"
    sample = Path(__file__).resolve().parents[1] / "knowledge" / "sample"
    settings = Settings().override({"kb.path": str(kb), "ingest.show_progress": False})
    report = IngestPipeline.from_config(settings, embedder=embedder).run([sample])
    assert not report.failed, report.failed
    return kb
