import numpy as np
import pytest

import faiss

from knowledge.config import IndexConfig
from knowledge.vectors import FaissVectorIndex, estimate_memory


def _unit(n, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_each_kind_searches_removes_filters_and_round_trips(tmp_path, kind):
    vectors = _unit(300)
    index = FaissVectorIndex(tmp_path / "v.faiss", 8, IndexConfig(type=kind, ivf_nprobe=64))
    index.add(np.arange(300) + 1000, vectors)
    assert index.kind == kind and len(index) == 300
    assert index.search(vectors[:3], 1)[1][:, 0].tolist() == [1000, 1001, 1002]
    assert index.search(vectors[:1], 2, allowed=np.array([1005, 1006]))[1][0].tolist() in ([1005, 1006], [1006, 1005])
    assert index.remove(np.array([1000, 1001])) == 2 and len(index) == 298
    assert 1000 not in index.search(vectors[:1], 5)[1][0]
    index.save()
    again = FaissVectorIndex(tmp_path / "v.faiss", 8, IndexConfig(type=kind, ivf_nprobe=64))
    assert len(again) == 298 and again.kind == kind
    np.testing.assert_allclose(again.reconstruct(np.array([1002])), vectors[2:3], atol=1e-6)


def test_auto_switches_to_hnsw_past_the_threshold_and_back(tmp_path):
    index = FaissVectorIndex(tmp_path / "v.faiss", 8, IndexConfig(type="auto", auto_threshold=50))
    vectors = _unit(60)
    index.add(np.arange(40), vectors[:40])
    assert index.kind == "flat"
    index.add(np.arange(40, 60), vectors[40:])
    assert index.kind == "hnsw" and len(index) == 60
    assert index.search(vectors[55:56], 1)[1][0, 0] == 55
    index.remove(np.arange(20))
    assert index.kind == "flat" and len(index) == 40


def test_empty_index_and_empty_filter_return_padding(tmp_path):
    index = FaissVectorIndex(tmp_path / "v.faiss", 8, IndexConfig())
    scores, ids = index.search(_unit(2), 3)
    assert ids.shape == (2, 3) and (ids == -1).all()
    index.add(np.array([1]), _unit(1))
    assert (index.search(_unit(1), 1, allowed=np.array([], dtype=np.int64))[1] == -1).all()
    with pytest.raises(ValueError, match="dimension"):
        index.add(np.array([2]), np.ones((1, 4), np.float32))


def _clustered(n, d=32, seed=0):
    """Vectors with low intrinsic dimension, like sentence embeddings (PQ on pure noise is meaningless)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)) @ rng.normal(size=(6, d)) + 0.05 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivfpq_lists_are_memory_mapped_for_readers_and_writable_for_writers(tmp_path):
    vectors = _clustered(3000)
    config = IndexConfig(type="ivfpq", pq_m=8, ivf_nprobe=256)  # every list: filters see all ids
    index = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    index.add(np.arange(3000) + 10, vectors)
    assert index.kind == "ivfpq" and len(index) == 3000
    top = index.search(vectors[:50], 10)[1]
    assert np.mean([i + 10 in row for i, row in enumerate(top)]) > 0.9  # PQ is approximate, not random
    index.save()
    reader = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    assert reader._mapped and isinstance(faiss.downcast_InvertedLists(reader.index.invlists), faiss.OnDiskInvertedLists)
    np.testing.assert_array_equal(reader.search(vectors[:50], 10)[1], top)
    assert reader.search(vectors[:1], 3, allowed=np.array([11, 12]))[1][0, :2].tolist() in ([11, 12], [12, 11])
    assert reader.remove(np.array([10, 11])) == 2 and not reader._mapped  # a writer reads the file into memory
    assert 10 not in reader.ids() and len(reader.ids()) == 2998
    reader.add(np.array([5]), vectors[:1])
    assert reader.search(vectors[:1], 1)[1][0, 0] == 5
    assert np.dot(reader.reconstruct(np.array([5]))[0], vectors[0]) > 0.9


def test_auto_goes_to_ivfpq_past_the_ondisk_threshold_and_estimates_memory(tmp_path):
    config = IndexConfig(auto_threshold=100, ondisk_threshold=400, pq_m=8, ivf_nprobe=64)
    index = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    vectors = _clustered(600)
    index.add(np.arange(300), vectors[:300])
    assert index.kind == "hnsw"
    index.add(np.arange(300, 600), vectors[300:])
    assert index.kind == "ivfpq" and len(index) == 600
    flat = estimate_memory("flat", 1_000_000, 384, IndexConfig())
    pq = estimate_memory("ivfpq", 1_000_000, 384, IndexConfig())
    assert flat["ram_bytes"] > 1_536_000_000 and pq["ram_bytes"] < flat["ram_bytes"] / 50
    assert pq["disk_bytes"] >= 56_000_000 and index.memory_estimate()["kind"] == "ivfpq"
    with pytest.raises(ValueError, match="pq_m"):
        FaissVectorIndex(tmp_path / "w.faiss", 30, IndexConfig(type="ivfpq", pq_m=8)).add(np.arange(300), _clustered(300, 30))


def test_ivfpq_rescoring_from_the_float16_sidecar_lifts_recall_and_survives_a_missing_sidecar(tmp_path):
    vectors, queries = _clustered(4000, seed=1), _clustered(60, seed=2)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]

    def recall(index):
        found = index.search(queries, 10)[1]
        return np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])

    coarse = FaissVectorIndex(tmp_path / "a.faiss", 32, IndexConfig(type="ivfpq", pq_m=4, ivf_nprobe=64, refine=0))
    coarse.add(np.arange(4000), vectors)
    config = IndexConfig(type="ivfpq", pq_m=4, ivf_nprobe=64, refine=200)
    index = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    index.add(np.arange(2000), vectors[:2000])
    index.add(np.arange(2000, 4000), vectors[2000:])  # rows appended by a later add
    index.save()
    assert index.sidecar.stat().st_size == 4000 * 32 * 2 and not coarse.sidecar.exists()
    reader = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    exact_recall, pq_recall = recall(reader), recall(coarse)
    assert exact_recall > 0.95 and exact_recall > pq_recall + 0.1, (exact_recall, pq_recall)
    scores, ids = reader.search(queries[:1], 5)
    np.testing.assert_allclose(scores[0], vectors[ids[0]] @ queries[0], atol=2e-3)  # exact scores, best first
    np.testing.assert_allclose(reader.reconstruct(np.array([7]))[0], vectors[7], atol=2e-3)
    assert reader.search(queries[:1], 3, allowed=np.array([11, 12]))[1][0, :2].tolist() in ([11, 12], [12, 11])
    reader.sidecar.unlink()  # an index written before sidecars existed: PQ order, still answers
    old = FaissVectorIndex(tmp_path / "v.faiss", 32, config)
    assert abs(recall(old) - pq_recall) < 0.1
    with_rows, without = (estimate_memory("ivfpq", 1000, 32, c)["disk_bytes"] for c in (config, coarse.config))
    assert with_rows == without + 1000 * 32 * 2
