"""Dataset loaders and their errors on bad input."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipelines.evaluate.data import DatasetError, detect_format, load_dataset

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


def test_detect_format_from_path() -> None:
    assert detect_format(FIX / "beir") == "beir"
    assert detect_format(FIX / "qa.jsonl") == "qa"
    assert detect_format(FIX / "pubmedqa") == "pubmedqa"
    with pytest.raises(DatasetError, match="not a dataset"):
        detect_format(FIX / "nothing.txt")


def test_beir_loads_split_and_warns_about_unknown_ids() -> None:
    ds = load_dataset(FIX / "beir")
    assert ds.split == "test" and ds.corpus == FIX / "beir" / "corpus.jsonl"
    assert [q.id for q in ds.queries] == ["q1", "q2", "q3", "q4", "q5"]
    assert ds.queries[1].relevant == {"d2": 1, "d5": 1}
    assert any("1 queries not in queries.jsonl" in w for w in ds.warnings)
    assert any("1 judged docs not in corpus.jsonl" in w and "d404" in w for w in ds.warnings)
    assert [q.id for q in load_dataset(FIX / "beir", split="dev").queries] == ["q5"]


def test_missing_split_lists_available_splits() -> None:
    with pytest.raises(DatasetError, match="available splits: dev, test"):
        load_dataset(FIX / "beir", split="train")
    with pytest.raises(DatasetError, match="available splits: test, train"):
        load_dataset(FIX / "pubmedqa", split="dev")


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(FIX / "beir", tmp_path / "b")
    with (tmp_path / "b" / "queries.jsonl").open("a") as fh:
        fh.write('{"_id": "q6", "text": broken}\n')
    with pytest.raises(DatasetError, match=r"queries.jsonl:6: not valid JSON"):
        load_dataset(tmp_path / "b")
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "1", "question": "q?", "answers": ["a"]}\n{"id": "2", "question": "q?"}\n')
    with pytest.raises(DatasetError, match=r"qa.jsonl:2: needs 'answers', 'label' or 'unanswerable'"):
        load_dataset(bad)


def test_bad_qrels_line_is_named(tmp_path: Path) -> None:
    shutil.copytree(FIX / "beir", tmp_path / "b")
    (tmp_path / "b" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DatasetError, match=r"test.tsv:2: expected 3 tab-separated columns"):
        load_dataset(tmp_path / "b")


def test_qa_jsonl_fields() -> None:
    ds = load_dataset(FIX / "qa.jsonl")
    a1, _, a3 = ds.queries
    assert a1.answers == ("1300 degrees", "1300") and a1.relevant == {"d1": 1} and a1.gold_context
    assert a3.label == "yes" and a3.answers == ()
    assert ds.corpus is None and not ds.corpus_rows


def test_qa_label_must_be_yes_no_maybe(tmp_path: Path) -> None:
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "1", "question": "q?", "label": "perhaps"}\n')
    with pytest.raises(DatasetError, match="qa.jsonl:1: label 'perhaps'"):
        load_dataset(bad)


def test_pubmedqa_test_split_corpus_and_gold() -> None:
    ds = load_dataset(FIX / "pubmedqa")
    assert len(ds.queries) == 12 and Counter(q.label for q in ds.queries) == {"yes": 6, "no": 4, "maybe": 2}
    assert len(ds.corpus_rows) == 16  # every abstract is in the corpus, train pool included
    q = ds.queries[0]
    assert q.relevant == {q.id: 1} and q.gold_context and q.gold_context.startswith("We studied")
    assert len(load_dataset(FIX / "pubmedqa", split="train").queries) == 4


def test_limit_is_a_seeded_random_sample_not_the_head() -> None:
    full = load_dataset(FIX / "pubmedqa")
    a = load_dataset(FIX / "pubmedqa", limit=6, seed=3)
    b = load_dataset(FIX / "pubmedqa", limit=6, seed=3)
    others = {tuple(q.id for q in load_dataset(FIX / "pubmedqa", limit=6, seed=s).queries) for s in range(5)}
    assert [q.id for q in a.queries] == [q.id for q in b.queries]
    assert len(others) > 1
    # the file lists the 6 'yes' first: a head slice would be all 'yes'; a random sample almost never is
    heads = sum(1 for s in range(20) if {q.label for q in load_dataset(FIX / "pubmedqa", limit=6, seed=s).queries} == {"yes"})
    assert heads < 3 and len(full.queries) == 12
    with pytest.raises(ValueError, match="limit must be greater than 0"):
        load_dataset(FIX / "pubmedqa", limit=0)
