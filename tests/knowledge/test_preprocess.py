"""Normalisation, sentence packing and chunking: budgets, overlap, offsets, ids, metadata, entities."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge.config import IngestConfig, PreprocessConfig
from knowledge.preprocess import Preprocessor, pack
from knowledge.sources import discover, load
from rag.errors import ConfigError
from rag.types import Block, Document, content_hash

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact" / "corpus.jsonl"


def words(texts: list[str]) -> list[int]:
    """A fake tokenizer: one token per whitespace-separated word."""
    return [len(t.split()) for t in texts]


def make_doc(*blocks: str | Block, title: str = "Doc", **meta: object) -> Document:
    blocks = tuple(b if isinstance(b, Block) else Block(b) for b in blocks)
    return Document("d1", "/src/d1.txt", title, blocks, {"format": "txt", **meta})


def check_invariants(pre: Preprocessor, doc: Document, passages: list, count) -> None:
    """Offsets map back to the normalised text, counts are the tokenizer's, budget and block bounds hold."""
    text = pre.normalize_document(doc).text
    assert [p.order for p in passages] == list(range(len(passages)))
    for passage, real in zip(passages, count([p.text for p in passages])):
        assert text[passage.start:passage.end] == passage.text
        assert passage.n_tokens == real <= pre.config.max_tokens
        assert passage.id == content_hash(passage.text) and passage.doc_id == doc.doc_id
    covered = set().union(*(range(p.start, p.end) for p in passages)) if passages else set()
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace() and ch != "\n")


# ---- normalisation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﬁnal  ｆｕｌｌ\twidth", "final full width"),  # NFKC ligatures and full-width forms
        ("a\x00b\x07c\u200bd", "abcd"),  # control characters and zero-width space
        ("co\u00adoperate", "cooperate"),  # soft hyphen
        ("infor-\nmation and well-\n  being", "information and wellbeing"),
        ("Well-\nKnown stays", "Well-\nKnown stays"),  # only lower-case continuations are hyphenation
        ("one\r\n\r\n\r\n\r\ntwo  \n  three\n\n\n", "one\n\ntwo\nthree"),
        ("\u00a0 spaced \u2003 out ", "spaced out"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert Preprocessor.normalize(raw) == expected


def test_normalize_is_idempotent_on_hostile_text() -> None:
    raw = "x-\ny-\nz \t\r\n\n\n\u00ad\u2028 ﬁ\x0c  a-\n-\nb  \n \n \n c"
    once = Preprocessor.normalize(raw)
    assert Preprocessor.normalize(once) == once


# ---- packing ------------------------------------------------------------------------------------------------------


def test_pack_respects_budget_and_overlap() -> None:
    counts = [4, 4, 4, 4, 4, 4]
    assert pack(counts, 10, 0) == [(0, 2), (2, 4), (4, 6)]
    assert pack(counts, 12, 1) == [(0, 3), (2, 5), (4, 6)]


def test_pack_drops_overlap_that_leaves_no_room_and_isolates_oversized_units() -> None:
    assert pack([6, 6, 6], 10, 1) == [(0, 1), (1, 2), (2, 3)]  # 6 + 6 > 10: no overlap possible
    assert pack([3, 20, 3], 10, 2) == [(0, 1), (1, 2), (2, 3)]
    assert pack([], 10, 1) == []


def test_pack_starts_a_range_at_a_paragraph_that_would_straddle_two() -> None:
    # the paragraph of units 3-4 (40 + 30) does not fit after 100 tokens but fits alone: it starts the next range
    assert pack([40, 30, 30, 40, 30], 120, 0, [True, False, False, True, False]) == [(0, 3), (3, 5)]
    assert pack([40, 30, 30, 20, 30], 120, 0, [True, False, False, True, False]) == [(0, 3), (3, 5)]
    assert pack([40, 30, 30, 20, 30], 120, 0) == [(0, 4), (4, 5)]  # without paragraph marks: fill greedily
    # a paragraph larger than the budget cannot be kept whole: filled greedily; a range under a quarter of the
    # budget is never ended early
    assert pack([60, 70, 70], 120, 0, [True, True, False]) == [(0, 1), (1, 2), (2, 3)]
    assert pack([20, 50, 60], 120, 0, [True, True, False]) == [(0, 2), (2, 3)]


# ---- chunking with a predictable fake tokenizer ---------------------------------------------------------------


def test_overlap_repeats_exactly_the_last_sentence() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(12)]  # 5 words each
    pre = Preprocessor(PreprocessConfig(max_tokens=16, overlap_sentences=1), words)
    passages = pre.chunk(make_doc(" ".join(sentences)))
    check_invariants(pre, make_doc(" ".join(sentences)), passages, words)
    # 3 sentences fit; each chunk after the first starts with the previous chunk's last sentence
    assert [p.text.count("Sentence") for p in passages] == [3, 3, 3, 3, 3, 2]
    for prev, nxt in zip(passages, passages[1:]):
        assert prev.text.split(". ")[-1].rstrip(".") == nxt.text.split(". ")[0]


def test_abbreviations_do_not_end_sentences() -> None:
    text = ("Dr. Smith arrived at the lab. Mr. Jones was already there, e.g. checking the U.S. samples at 5 p.m. "
            "today. They left at noon.")
    pre = Preprocessor(PreprocessConfig(max_tokens=16, overlap_sentences=0), words)
    passages = pre.chunk(make_doc(text))
    assert [p.text for p in passages] == [
        "Dr. Smith arrived at the lab.",
        "Mr. Jones was already there, e.g. checking the U.S. samples at 5 p.m. today.",
        "They left at noon.",
    ]


def test_chunks_never_cross_blocks_and_carry_block_metadata() -> None:
    doc = make_doc(Block("Alpha one. Alpha two.", section="A"), Block("   "), Block("Beta one.", page=2),
                   tags=["x"], date="2024-01-01")
    pre = Preprocessor(PreprocessConfig(max_tokens=100), words)
    passages = pre.chunk(doc)
    assert [p.text for p in passages] == ["Alpha one. Alpha two.", "Beta one."]
    assert passages[0].metadata == {"format": "txt", "tags": ["x"], "date": "2024-01-01", "section": "A"}
    assert passages[1].metadata["page"] == 2 and "section" not in passages[1].metadata
    assert passages[1].start == len("Alpha one. Alpha two.\n\n")  # the empty block is gone from the text
    assert passages[0].location == "d1 § A" and passages[1].location == "d1 p. 2"


def test_paragraph_breaks_end_sentences() -> None:
    heading = "A heading of ten words that has no full stop"
    body = "The body paragraph also has ten words and ends here."
    pre = Preprocessor(PreprocessConfig(max_tokens=16, overlap_sentences=0), words)
    # as one 20-word sentence it would be cut 16 + 4 words; the blank line makes two sentences
    assert [p.text for p in pre.chunk(make_doc(f"{heading}\n\n{body}"))] == [heading, body]


def test_a_table_row_is_never_cut_from_its_name() -> None:
    """Node.js's os.md: the PRIORITY_HIGHEST row's "-20" was cut into the next passage, away from the row's name."""
    rows = [f"PRIORITY_{i} | The priority number {i}. This corresponds to CLASS_{i} on Windows, and a nice value of "
            f"-{i} on all other platforms." for i in range(6)]  # 24 words each
    pre = Preprocessor(PreprocessConfig(max_tokens=64, overlap_sentences=0), words)
    passages = pre.chunk(make_doc("\n\n".join(rows)))
    assert [p.text.count("PRIORITY_") for p in passages] == [2, 2, 2]
    assert all(p.text.endswith("platforms.") for p in passages)


def test_empty_documents_give_no_passages() -> None:
    pre = Preprocessor(PreprocessConfig(), words)
    assert pre.chunk(make_doc("", " \n\t ", "\x00\u200b")) == []
    assert pre.chunk_documents([]) == []


def test_ids_are_content_hashes_stable_across_runs_and_local_to_changes() -> None:
    sentences = [f"Fact {i} concerns item {i}." for i in range(20)]
    pre = Preprocessor(PreprocessConfig(max_tokens=20, overlap_sentences=0), words)
    first = [p.id for p in pre.chunk(make_doc(" ".join(sentences)))]
    again = [p.id for p in Preprocessor(PreprocessConfig(max_tokens=20, overlap_sentences=0), words).chunk(
        make_doc(" ".join(sentences)))]
    assert first == again and len(set(first)) == len(first)
    sentences[-1] = "Fact 19 was changed."
    changed = [p.id for p in pre.chunk(make_doc(" ".join(sentences)))]
    assert changed[:-1] == first[:-1] and changed[-1] != first[-1]


def test_batch_api_matches_single_documents() -> None:
    pre = Preprocessor(PreprocessConfig(max_tokens=20), words)
    docs = [Document(f"d{i}", "s", "T", (Block(f"Doc {i} first. Doc {i} second. " * 4),)) for i in range(3)]
    assert pre.chunk_documents(docs) == [p for d in docs for p in pre.chunk(d)]


def test_embedding_text_prefixes_title_and_section() -> None:
    doc = make_doc(Block("The kiln is hot.", section="Kiln > Firing"), title="Velmora")
    passage = Preprocessor(PreprocessConfig(), words).chunk(doc)[0]
    assert Preprocessor(PreprocessConfig(), words).embedding_text(passage) == "Velmora. Kiln > Firing: The kiln is hot."
    bare = Preprocessor(PreprocessConfig(embed_title=False, embed_section=False), words)
    assert bare.embedding_text(passage) == "The kiln is hot."
    long_title = Preprocessor(PreprocessConfig(embed_section=False), words).embedding_text(
        Preprocessor(PreprocessConfig(), words).chunk(make_doc("Body.", title="word " * 100))[0])
    assert len(long_title) < 140 and long_title.endswith("Body.")


def test_missing_spacy_pipeline_is_a_config_error_with_a_hint() -> None:
    pre = Preprocessor(PreprocessConfig(spacy_model="xx_not_installed_pipeline"), words)
    with pytest.raises(ConfigError, match="python -m spacy download xx_not_installed_pipeline"):
        pre.chunk(make_doc("Some text."))


def test_entities_from_a_pipeline_with_an_entity_ruler(tmp_path: Path) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Ilse Marrow"},
                                               {"label": "GPE", "pattern": "Port Aubrey"}])
    nlp.to_disk(tmp_path / "pipe")
    pre = Preprocessor(PreprocessConfig(spacy_model=str(tmp_path / "pipe"), max_tokens=16, overlap_sentences=0), words)
    passages = pre.chunk(make_doc("Ilse Marrow lives in Port Aubrey near the harbour wall. Later that year "
                                  "she met Ilse Marrow again in town. Nobody else came to the meeting that day."))
    assert [p.metadata["entities"] for p in passages] == [
        [["Ilse Marrow", "PERSON"], ["Port Aubrey", "GPE"]], [["Ilse Marrow", "PERSON"]], []]
    off = Preprocessor(PreprocessConfig(spacy_model=str(tmp_path / "pipe"), extract_entities=False), words)
    assert "entities" not in off.chunk(make_doc("Ilse Marrow lives here."))[0].metadata


# ---- the real embedding tokenizer -------------------------------------------------------------------------------


@pytest.mark.slow
def test_long_sentence_and_giant_word_are_split_under_budget(embedder) -> None:
    count = embedder.count_tokens_batch
    long_sentence = " ".join(f"clause{i} flows into another clause without any stop" for i in range(60))
    giant = "ACGT" * 600
    doc = make_doc(f"Short opener. {long_sentence}. Then {giant} ends. Final remark.")
    pre = Preprocessor(PreprocessConfig(max_tokens=32, overlap_sentences=1), count)
    passages = pre.chunk(doc)
    check_invariants(pre, doc, passages, count)
    assert len(passages) >= count([doc.text])[0] // 32
    joined = re.sub(r"\s+", "", "".join(p.text for p in passages if "clause" in p.text and "opener" not in p.text))
    assert re.sub(r"\s+", "", long_sentence) in joined  # pieces in order, nothing lost


@pytest.mark.slow
def test_unicode_text_keeps_offsets_and_budget(embedder) -> None:
    count = embedder.count_tokens_batch
    text = ("Ο κεραμικός φούρνος φτάνει τους 1.340 °C. 陶窯は非常に高温になります。 Café naïve — ﬁne déjà vu 🙂. "
            * 12)
    doc = make_doc(text, "Second block: Ünïcödé ½ ™ ℃.")
    pre = Preprocessor(PreprocessConfig(max_tokens=24, overlap_sentences=1), count)
    check_invariants(pre, doc, pre.chunk(doc), count)


@pytest.mark.slow
def test_sample_corpus_chunks_under_budget_with_sections(embedder) -> None:
    config = IngestConfig()
    docs = [d for f in discover([SAMPLE], config).files for d in load(f, config).documents]
    pre = Preprocessor(PreprocessConfig(max_tokens=64), embedder.count_tokens_batch)
    passages = pre.chunk_documents(docs)
    for doc in docs:
        check_invariants(pre, doc, [p for p in passages if p.doc_id == doc.doc_id], embedder.count_tokens_batch)
    kiln = [p for p in passages if "The Velmora kiln reaches 1,340 °C" in p.text]
    assert len(kiln) == 1 and kiln[0].metadata["section"] == "The Kiln"
    assert {p.metadata.get("page") for p in passages if p.metadata["format"] == "pdf"} == {1, 2}


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.exists(), reason="shared SciFact data not present")
def test_scifact_sample_chunks_under_default_budget(embedder) -> None:
    with SCIFACT.open() as fh:
        rows = [json.loads(next(fh)) for _ in range(300)]
    docs = [Document(f"s#{r['_id']}", "s", r["title"], (Block(r["text"]),)) for r in rows]
    pre = Preprocessor(PreprocessConfig(), embedder.count_tokens_batch)
    passages = pre.chunk_documents(docs)
    for doc in docs[:100]:
        check_invariants(pre, doc, [p for p in passages if p.doc_id == doc.doc_id], embedder.count_tokens_batch)
    real = embedder.count_tokens_batch([p.text for p in passages])
    assert [p.n_tokens for p in passages] == real and max(real) <= pre.config.max_tokens
