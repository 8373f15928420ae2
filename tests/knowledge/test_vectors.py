import numpy as np
import pytest

from knowledge.vectors import FaissVectorIndex
from rag.config import IndexConfig


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
