"""Property-based fuzzing of the loaders and the chunker (hypothesis, bounded so the file runs in seconds).

Whatever the bytes, a loader returns documents or raises ``SourceError`` (one line); every document it returns
has text that SQLite can store; the chunker's passages are spans of the normalised text within the budget.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.config import IngestConfig, PreprocessConfig
from knowledge.preprocess import Preprocessor
from knowledge.sources import load
from rag.errors import SourceError
from rag.types import Block, Document

CONFIG = IngestConfig(max_line_chars=5_000)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = [".txt", ".md", ".html", ".jsonl", ".pdf"]


def _load(data: bytes, suffix: str):  # noqa: ANN202 - LoadResult | None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            result = load(path, CONFIG)
        except SourceError as exc:
            assert "\n" not in str(exc) and str(path.resolve()) in str(exc)
            return None
    for doc in result.documents:
        assert doc.blocks and all(b.text.strip() for b in doc.blocks)
        json.dumps([doc.title, doc.doc_id, doc.text, doc.metadata], ensure_ascii=False).encode("utf-8")
    return result


@pytest.mark.parametrize("suffix", FORMATS)
@FAST
@given(data=st.binary(max_size=2_000))
def test_random_bytes_load_or_fail_with_one_line(suffix: str, data: bytes) -> None:
    _load(data, suffix)


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
@FAST
@given(text=st.text(max_size=1_000))
def test_random_unicode_loads_or_fails_cleanly(suffix: str, text: str) -> None:
    _load(text.encode("utf-8", "surrogatepass"), suffix)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_records = st.fixed_dictionaries(
    {}, optional={"id": _json_values, "_id": _json_values, "title": _json_values, "text": _json_values | st.text(),
                  "metadata": _json_values | st.fixed_dictionaries({}, optional={"tags": _json_values,
                                                                                  "date": _json_values})})


@FAST
@given(rows=st.lists(_records | _json_values, min_size=1, max_size=8), garbage=st.lists(st.text(max_size=40), max_size=3))
def test_random_jsonl_fails_line_by_line(rows: list, garbage: list[str]) -> None:
    lines = [json.dumps(r) for r in rows] + [g.replace("\n", " ") for g in garbage]
    result = _load("\n".join(lines).encode("utf-8", "surrogatepass"), ".jsonl")
    good = sum(isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip() != "" for r in rows)
    if result is not None:
        assert len(result.documents) <= good and len(result.documents) + len(result.warnings) >= 1


def _words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


_long_words = st.lists(st.text(alphabet="abcxyz.", min_size=1, max_size=600), max_size=12).map(" ".join)


@FAST
@given(text=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=3_000) | _long_words,
       budget=st.integers(min_value=16, max_value=64))
def test_chunker_passages_are_spans_within_the_budget(text: str, budget: int) -> None:
    pre = Preprocessor(PreprocessConfig(max_tokens=budget), _words)
    doc = Document("d", "d", "T", (Block(text), Block(text[::-1], section="S")))
    norm = pre.normalize_document(doc).text
    passages = pre.chunk(doc)
    for p in passages:
        assert norm[p.start:p.end] == p.text and p.text.strip() == p.text and p.text
        assert p.n_tokens <= budget
    # no character lost or repeated (overlap is 0), whatever was cut where
    assert "".join("".join(p.text.split()) for p in passages) == "".join(norm.split())
