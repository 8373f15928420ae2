"""The embedder on the real bundled MiniLM: length-sorted batches give sentence-transformers' own vectors."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import _length_batches

TEXTS = ["short", "a somewhat longer sentence about the Velmora kiln and its firing schedule",
         "x " * 400, "The ferry Saltwren sails to Dunmere.", "", "porcelain " * 30]


def test_length_batches_sort_and_respect_the_budget() -> None:
    lengths = [5, 50, 3, 50, 20, 7]
    batches = _length_batches(lengths, budget=60)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) * max(lengths[i] for i in b) <= 60 or len(b) == 1 for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


@pytest.mark.slow
def test_vectors_match_sentence_transformers_in_input_order(embedder) -> None:
    ours = embedder.embed(TEXTS, batch_size=2)
    reference = embedder.model.encode([embedder.config.passage_prefix + t for t in TEXTS], batch_size=2,
                                      normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    queries = embedder.embed_queries(["kiln temperature"])
    assert queries.shape == (1, embedder.dimension) and float(ours[1] @ queries[0]) > float(ours[0] @ queries[0])
