"""BM25Index: segments, tombstones, merges, global-IDF scoring, atomic persistence, real-text ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from knowledge.sparse import BM25Index
from rag.config import RetrievalConfig
from rag.errors import IndexMismatchError

PLAIN = RetrievalConfig(bm25_stemmer="")
# every document has three tokens, so every segment has the same average length and scores are exactly comparable
DOCS = [
    ("d0", "alpha beta gamma"),
    ("d1", "alpha delta epsilon"),
    ("d2", "zeta eta theta"),
    ("d3", "beta beta iota"),
    ("d4", "kappa alpha lambda"),
    ("d5", "gamma mu nu"),
]


def index(tmp_path: Path, **kwargs: object) -> BM25Index:
    return BM25Index(tmp_path / "bm25", kwargs.pop("config", PLAIN), **kwargs)


def test_real_text_obvious_top_hit(tmp_path: Path) -> None:
    bm25 = index(tmp_path, config=RetrievalConfig())
    bm25.add(
        [
            ("cook", "Preheat the oven and bake the bread for forty minutes."),
            ("stars", "Neutron stars are the collapsed cores of massive stars."),
            ("tax", "The tax return must be filed before the end of April."),
        ]
    )
    assert bm25.search("how are neutron stars formed", k=3)[0][0] == "stars"
    assert bm25.search("baking bread", k=1)[0][0] == "cook"  # the stemmer matches baking ~ bake


def test_split_segments_score_like_one_index(tmp_path: Path) -> None:
    whole = index(tmp_path / "a")
    whole.add(DOCS)
    split = index(tmp_path / "b")
    split.add(DOCS[:4])
    split.add(DOCS[4:5])  # two delta segments
    split.add(DOCS[5:])
    split.remove(["d3"])
    whole.remove(["d3"])
    assert split.segment_sizes() == [4, 2]
    for query in ["alpha", "gamma beta", "mu alpha"]:
        expected = whole.search(query, k=6)
        got = split.search(query, k=6)
        assert [p for p, _ in got] == [p for p, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-5)


def test_deltas_merge_like_a_binary_counter(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add([("m", "main passage")])
    sizes = []
    for i in range(7):
        bm25.add([(f"x{i}", f"word{i} common")])
        sizes.append(bm25.segment_sizes()[1:])
    assert sizes == [[1], [2], [2, 1], [4], [4, 1], [4, 2], [4, 2, 1]]
    assert {p for p, _ in bm25.search("common", k=10)} == {f"x{i}" for i in range(7)}
    assert bm25.search("word5", k=3)[0][0] == "x5"


def test_remove_hides_main_and_delta_passages(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS[:4])
    bm25.add(DOCS[4:])
    bm25.remove(["d0", "d4", "unknown"])
    assert {p for p, _ in bm25.search("alpha", k=10)} == {"d1"}
    assert "d0" not in bm25 and "d1" in bm25 and len(bm25) == 4
    assert bm25.segment_sizes() == [4, 1] and bm25.main.dead.sum() == 1
    assert sorted(bm25.ids()) == ["d1", "d2", "d3", "d5"]


def test_readding_a_removed_passage_brings_it_back_once(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS)
    bm25.remove(["d0"])
    bm25.add([("d0", "alpha beta gamma")])
    assert [p for p, _ in bm25.search("gamma", k=10)].count("d0") == 1
    bm25.add([("d1", "alpha delta epsilon")])  # already live: no duplicate
    assert len(bm25) == 6


def test_allowed_restricts_results(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS[:4])
    bm25.add(DOCS[4:])
    assert {p for p, _ in bm25.search("alpha", k=10, allowed={"d1", "d4", "d2"})} == {"d1", "d4"}
    assert bm25.search("alpha", k=10, allowed=set()) == []


def test_k_and_queries_without_known_terms(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS)
    assert len(bm25.search("alpha", k=2)) == 2
    assert bm25.search("the of and", k=3) == []  # stopwords only
    assert bm25.search("unseen", k=3) == []
    with pytest.raises(ValueError, match="k is 0"):
        bm25.search("alpha", k=0)


def test_merge_when_delta_grows_past_fraction(tmp_path: Path) -> None:
    live = dict(DOCS)
    bm25 = index(tmp_path, texts_for=lambda: list(live.items()), merge_fraction=0.5)
    bm25.add(DOCS[:4])
    bm25.add(DOCS[4:])
    assert not bm25.needs_merge()  # delta 2 <= 0.5 * 4
    live["d6"] = "omega alpha pi"
    bm25.add([("d6", live["d6"])])
    assert bm25.needs_merge()
    bm25.save()
    assert bm25.segment_sizes() == [7]
    assert "d6" in {p for p, _ in BM25Index(tmp_path / "bm25", PLAIN).search("omega", k=3)}


def test_merge_when_tombstones_grow_past_fraction(tmp_path: Path) -> None:
    live = dict(DOCS)
    bm25 = index(tmp_path, texts_for=lambda: list(live.items()), merge_fraction=0.3)
    bm25.add(DOCS)
    for pid in ("d0", "d1"):
        del live[pid]
    bm25.remove(["d0", "d1"])
    assert bm25.needs_merge()  # 2 tombstones > 0.3 * 6
    bm25.save()
    assert sorted(bm25.main.ids) == ["d2", "d3", "d4", "d5"] and not bm25.main.dead.any()


def test_save_load_round_trip_keeps_segments_and_tombstones(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS[:4])
    bm25.add(DOCS[4:])
    bm25.remove(["d0"])
    bm25.save()
    loaded = index(tmp_path)
    for query in ["alpha", "beta gamma", "mu"]:
        assert loaded.search(query, k=10) == bm25.search(query, k=10)
    assert len(loaded) == 5 and "d0" not in loaded


def test_saved_files_are_json_and_plain_npy(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS)
    bm25.save()
    files = [p for p in (tmp_path / "bm25").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".npy", ".json", ""}  # "" is CURRENT
    for path in files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)
        else:
            json.loads(path.read_text())


def test_interrupted_save_leaves_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS[:3])
    bm25.save()
    bm25.add(DOCS[3:])
    real_write = BM25Index._write

    def crash(self: BM25Index, target: Path) -> None:
        real_write(self, target)
        raise OSError("disk full")

    monkeypatch.setattr(BM25Index, "_write", crash)
    with pytest.raises(OSError, match="disk full"):
        bm25.save()
    assert len(index(tmp_path)) == 3
    monkeypatch.undo()
    bm25.save()  # a later save succeeds over the leftovers
    assert len(index(tmp_path)) == 6
    assert [p.name for p in (tmp_path / "bm25").iterdir() if p.is_dir()] == ["v2"]


def test_changed_settings_rebuild_or_fail(tmp_path: Path) -> None:
    bm25 = index(tmp_path)
    bm25.add(DOCS)
    bm25.save()
    other = RetrievalConfig(bm25_stemmer="", bm25_k1=0.9)
    with pytest.raises(IndexMismatchError):
        BM25Index(tmp_path / "bm25", other)
    rebuilt = BM25Index(tmp_path / "bm25", other, texts_for=lambda: DOCS[:2])
    assert len(rebuilt) == 2


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="merge_fraction is 0"):
        index(tmp_path, merge_fraction=0)
    with pytest.raises(ValueError, match="klingon"):
        BM25Index(tmp_path, RetrievalConfig(bm25_stemmer="klingon"))


def test_idf_is_global_over_segments_and_none_for_stopwords(tmp_path: Path) -> None:
    split = index(tmp_path / "a")
    split.add(DOCS[:3])
    split.add(DOCS[3:])  # a second segment
    alpha, zeta, unseen = split.idf("alpha"), split.idf("zeta"), split.idf("omega")
    assert alpha is not None and zeta is not None and unseen is not None
    assert unseen > zeta > alpha  # in 0, 1 and 3 of 6 documents
    assert split.idf("the") is None


def test_holds_is_true_for_a_word_some_live_passage_holds(tmp_path: Path) -> None:
    split = index(tmp_path / "a")
    split.add(DOCS[:3])
    split.add(DOCS[3:])  # a second segment
    assert split.holds("iota") and split.holds("alpha zeta") and not split.holds("omega")
    assert not split.holds("the") and not split.holds("alpha omega")
    split.remove(["d3"])  # the only passage with "iota"
    assert not split.holds("iota")
