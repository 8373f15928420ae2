"""The embedder on the real bundled MiniLM: length-sorted batches give sentence-transformers' own vectors.

``embedding.dtype = "auto"`` is bf16 on CPUs with native bf16 and fp32 elsewhere, so the comparison runs in both
precisions on every machine (bf16 runs, slowly, on AVX2 too), each with its own tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.embedding.embed import SentenceTransformerEmbedder, _length_batches

TEXTS = ["short", "a somewhat longer sentence about the Velmora kiln and its firing schedule",
         "x " * 400, "The ferry Saltwren sails to Dunmere.", "", "porcelain " * 30]
# (largest element difference, largest 1 - cosine) between our length-sorted batches and sentence-transformers' own
# input-order batches: padding changes the shapes, so the sums round differently. bf16 keeps 8 bits of mantissa
# (measured on AVX512-BF16: 0.0024 and 3.7e-4); fp32 agrees to about 2e-7.
TOLERANCE = {"float32": (1e-5, 1e-6), "bfloat16": (1e-2, 1e-3)}


@pytest.fixture(params=sorted(TOLERANCE))
def embedder_in(request, embedder_of) -> tuple[str, SentenceTransformerEmbedder]:
    """``(dtype, the bundled MiniLM in it)`` for float32 and bfloat16, whatever ``auto`` picks on this CPU."""
    return request.param, embedder_of(request.param)


def test_length_batches_sort_and_respect_the_budget() -> None:
    lengths = [5, 50, 3, 50, 20, 7]
    batches = _length_batches(lengths, budget=60)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) * max(lengths[i] for i in b) <= 60 or len(b) == 1 for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


@pytest.mark.slow
def test_vectors_match_sentence_transformers_in_input_order(embedder_in) -> None:
    dtype, emb = embedder_in
    atol, cosine_gap = TOLERANCE[dtype]
    ours = emb.embed(TEXTS, batch_size=2)
    reference = emb.model.encode([emb.config.passage_prefix + t for t in TEXTS], batch_size=2,
                                 normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=atol)
    assert (ours * reference).sum(axis=1).min() > 1 - cosine_gap
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # normalised in fp32 whatever the model's dtype
    queries = emb.embed_queries(["kiln temperature"])
    assert queries.shape == (1, emb.dimension) and float(ours[1] @ queries[0]) > float(ours[0] @ queries[0])
