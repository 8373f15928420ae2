"""Metadata filters on the real SQLite store, FAISS and BM25 (the retriever tests use fakes for the store):
source folder / file / glob, tags, date ranges (full dates, months, years), and records without a date."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from knowledge.kb import KnowledgeBase
from rag.config import RetrievalConfig
from rag.retrieve import HybridRetriever
from rag.types import Filters, Passage, content_hash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakes import KeywordEmbedder  # noqa: E402

EMBEDDER = KeywordEmbedder(["ferry", "kiln", "otter"])
EMB = {"model": "fake-keywords", "dimension": EMBEDDER.dimension, "normalize": True, "passage_prefix": ""}
ROWS = [  # (source, text, tags, date)
    ("/docs/news/2023/ferry.md", "The ferry was late in March.", ["transport"], "2023-03-14"),
    ("/docs/news/2024/ferry.md", "A new ferry arrives in May.", ["transport", "news"], "2024-05-02"),
    ("/docs/news/2024/kiln.md", "The kiln was relit in June.", ["craft", "news"], "2024-06"),
    ("/docs/guide/otter.md", "Otters feed at dawn near the ferry pier.", ["wildlife"], None),
    ("/docs/newsletter.md", "The kiln newsletter mentions a ferry.", [], "2024"),
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("filters") / "kb"
    with KnowledgeBase.open(root, EMB, write=True, create=True) as writer:
        for source, text, tags, date in ROWS:
            meta = {"tags": tags, **({"date": date} if date else {})}
            passage = Passage(content_hash(text), text, source, source, "T", 0, 0, len(text), 8, meta)
            writer.store.replace_source(source, "h", 1, 1.0, "s", [passage], [text], 1)
            vid = writer.store.next_vector_ids(1)
            writer.vectors.add(np.array(vid), EMBEDDER.embed([text]))
            writer.store.assign_vectors([(passage.id, vid[0])])
            writer.bm25.add([(passage.id, text)])
        writer.vectors.save()
        writer.bm25.save()
        writer.store.mark_done([r[0] for r in ROWS])
    reader = KnowledgeBase.open(root)
    yield reader
    reader.close()


def _sources(kb: KnowledgeBase, filters: Filters) -> set[str]:
    allowed = kb.store.allowed_ids(filters)
    return {p.source for p in kb.store.get_passages(sorted(allowed)).values()}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(source="/docs/news"), {"/docs/news/2023/ferry.md", "/docs/news/2024/ferry.md",
                                        "/docs/news/2024/kiln.md"}),  # a folder, not the /docs/newsletter.md prefix
        (Filters(source="/docs/news/"), {"/docs/news/2023/ferry.md", "/docs/news/2024/ferry.md",
                                         "/docs/news/2024/kiln.md"}),
        (Filters(source="/docs/guide/otter.md"), {"/docs/guide/otter.md"}),
        (Filters(source="*/2024/*"), {"/docs/news/2024/ferry.md", "/docs/news/2024/kiln.md"}),
        (Filters(source="*ferry.md"), {"/docs/news/2023/ferry.md", "/docs/news/2024/ferry.md"}),
        (Filters(tags=("news",)), {"/docs/news/2024/ferry.md", "/docs/news/2024/kiln.md"}),
        (Filters(tags=("news", "craft")), {"/docs/news/2024/kiln.md"}),
        (Filters(date_from="2024-01-01"), {"/docs/news/2024/ferry.md", "/docs/news/2024/kiln.md",
                                           "/docs/newsletter.md"}),
        (Filters(date_to="2023-12-31"), {"/docs/news/2023/ferry.md"}),
        # a date given as a year or a month is a period: it matches any range it overlaps
        (Filters(date_from="2024-05-01", date_to="2024-05-31"), {"/docs/news/2024/ferry.md", "/docs/newsletter.md"}),
        (Filters(date_from="2024-06-15", date_to="2024-07-01"), {"/docs/news/2024/kiln.md", "/docs/newsletter.md"}),
        (Filters(date_to="2024-06"), {"/docs/news/2023/ferry.md", "/docs/news/2024/ferry.md",
                                      "/docs/news/2024/kiln.md", "/docs/newsletter.md"}),
        (Filters(date_from="2020-01-01", tags=("wildlife",)), set()),  # no date: excluded by any date filter
        (Filters(source="/docs/guide", tags=("news",)), set()),
    ],
)
def test_real_store_filters(kb: KnowledgeBase, filters: Filters, expected: set[str]) -> None:
    assert _sources(kb, filters) == expected


def test_hybrid_retrieval_on_the_real_kb_respects_a_folder_and_date_filter(kb: KnowledgeBase) -> None:
    retriever = HybridRetriever(RetrievalConfig(k=5), EMBEDDER, kb.vectors, kb.bm25, kb.store)
    hits = retriever.retrieve("ferry", filters=Filters(source="/docs/news", date_from="2024-01-01"))
    assert [h.passage.source for h in hits] == ["/docs/news/2024/ferry.md", "/docs/news/2024/kiln.md"]


def test_source_weights_on_the_real_kb_reorder_hits(kb: KnowledgeBase) -> None:
    plain = HybridRetriever(RetrievalConfig(k=5), EMBEDDER, kb.vectors, kb.bm25, kb.store)
    damped = HybridRetriever(RetrievalConfig(k=5, source_weights={"/docs/news/*": 0.01}), EMBEDDER, kb.vectors,
                             kb.bm25, kb.store)
    assert plain.retrieve("ferry")[0].passage.source.startswith("/docs/news/")
    assert not damped.retrieve("ferry")[0].passage.source.startswith("/docs/news/")
