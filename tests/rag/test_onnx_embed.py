"""``embedding.runtime = "onnx-int8"`` on the real bundled MiniLM: exported once, close to torch, same rankings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embedding.embed import SentenceTransformerEmbedder
from rag.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[2]


def _int8(embedder: SentenceTransformerEmbedder, cache: Path) -> SentenceTransformerEmbedder:
    emb = SentenceTransformerEmbedder(embedder.config.model_copy(update={"runtime": "onnx-int8",
                                                                         "cache_dir": str(cache)}))
    emb.__dict__["model"] = embedder.model  # the session's loaded model (the tokenizer, the export): no second load
    return emb


def test_missing_onnxruntime_is_one_clear_error(monkeypatch, embedder, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ModelLoadError, match=r"pip install -e '\.\[onnx\]'"):
        _int8(embedder, tmp_path).embed(["the Velmora kiln"])


def test_a_damaged_export_is_one_clear_error_naming_it(embedder, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
    from rag.models import BUNDLED_EMBEDDERS, resolve_local
    from rag.embedding.onnx_embed import int8_model_path

    path = int8_model_path(resolve_local(embedder.config.model, BUNDLED_EMBEDDERS, False), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelLoadError, match="delete the file") as caught:
        _int8(embedder, tmp_path).embed(["the Velmora kiln"])
    assert str(path) in str(caught.value)


@pytest.mark.slow
def test_int8_vectors_are_close_to_torch_and_rank_passages_alike(embedder_of, tmp_path, monkeypatch) -> None:
    """Against torch fp32, the precision the graph is exported from (``auto`` would be bf16 on some CPUs).

    ONNX Runtime picks its int8 kernel by CPU: with AVX512-VNNI cosine min 0.990, mean 0.993; the bounds leave room
    for the AVX2 kernel (no VNNI: its u8 x s8 pair sums can saturate), on which rag/embedding/onnx_embed.py was measured.
    """
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
    embedder = embedder_of("float32")
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/trust/qa.jsonl").read_text().splitlines()]
    passages = [r["context"] for r in rows if r.get("context")]
    questions = [r["question"] for r in rows if r.get("context")]
    int8 = _int8(embedder, tmp_path)
    fast, exact = int8.embed(passages), embedder.embed(passages)
    cosine = (fast * exact).sum(axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.985
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    top_fast = (int8.embed_queries(questions) @ fast.T).argmax(axis=1)
    top_exact = (embedder.embed_queries(questions) @ exact.T).argmax(axis=1)
    assert (top_fast == top_exact).mean() >= 0.9
    own = np.arange(len(questions))  # the passage written for each question
    assert (top_fast == own).sum() >= (top_exact == own).sum() - 1

    exported = list((tmp_path / "onnx").glob("*.int8.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    import rag.embedding.onnx_embed

    def no_export(*_: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(rag.embedding.onnx_embed, "export_int8", no_export)
    np.testing.assert_allclose(_int8(embedder, tmp_path).embed(passages), fast, atol=1e-5)
    assert exported[0].stat().st_mtime_ns == stamp
