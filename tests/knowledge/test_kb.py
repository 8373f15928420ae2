import numpy as np
import pytest

from knowledge.kb import KnowledgeBase
from rag.errors import EmptyKnowledgeBaseError, IndexMismatchError, KnowledgeBaseError
from rag.types import Passage, content_hash

EMB = {"model": "test-model", "dimension": 4, "normalize": True, "passage_prefix": ""}


def _passages(texts, doc="/src/a.txt"):
    return [Passage(content_hash(t), t, doc, doc, "A", i, 0, len(t), 3, {}) for i, t in enumerate(texts)]


def _fill(kb, texts, path="/src/a.txt"):
    ps = _passages(texts, path)
    kb.store.replace_source(path, "h", 1, 1.0, "s", ps, [p.text for p in ps], 1)
    ids = kb.store.next_vector_ids(len(ps))
    vecs = np.eye(4, dtype=np.float32)[: len(ps)]
    kb.vectors.add(np.array(ids), vecs)
    kb.vectors.save()
    kb.store.assign_vectors([(p.id, v) for p, v in zip(ps, ids)])
    kb.bm25.add([(p.id, p.text) for p in ps])
    kb.bm25.save()
    kb.store.mark_done([path])
    return ps


def test_missing_kb_tells_to_ingest(tmp_path):
    with pytest.raises(EmptyKnowledgeBaseError, match="rag ingest"):
        KnowledgeBase.open(tmp_path / "kb")


def test_other_embedding_model_is_a_clear_error(tmp_path):
    KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True).close()
    with pytest.raises(IndexMismatchError, match="test-model.*other-model.*rag reindex"):
        KnowledgeBase.open(tmp_path / "kb", {**EMB, "model": "other-model"})


def test_second_writer_is_refused_while_readers_are_not(tmp_path):
    writer = KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True)
    try:
        with pytest.raises(KnowledgeBaseError, match="another process"):
            KnowledgeBase.open(tmp_path / "kb", EMB, write=True)
        KnowledgeBase.open(tmp_path / "kb", EMB).close()
    finally:
        writer.close()
    KnowledgeBase.open(tmp_path / "kb", EMB, write=True).close()


def test_repair_drops_stray_vectors_and_requeues_lost_ones(tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        ps = _fill(kb, ["alpha one.", "beta two.", "gamma three."])
        # a crash after FAISS was saved but before SQLite learnt the ids leaves a stray vector ...
        kb.vectors.add(np.array([99]), np.ones((1, 4), np.float32) / 2)
        kb.vectors.save()
        # ... and a FAISS file older than SQLite loses one
        kb.vectors.remove(np.array([kb.store.vector_ids_for([ps[0].id])[ps[0].id]]))
        kb.vectors.save()
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True) as kb:
        assert 99 not in kb.vectors.ids()
        assert [pid for pid, _ in kb.store.pending(10)] == [ps[0].id]
        assert set(kb.vectors.ids()) == set(kb.store.vector_map())
        assert set(kb.bm25.ids()) == {ps[1].id, ps[2].id}


def test_repair_rebuilds_bm25_out_of_step(tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        ps = _fill(kb, ["alpha one.", "beta two."])
        kb.bm25.remove([ps[0].id])
        kb.bm25.save()
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True) as kb:
        assert set(kb.bm25.ids()) == {p.id for p in ps}
        assert kb.bm25.search("alpha", 1)[0][0] == ps[0].id


def test_identical_passages_are_stored_once_and_located_at_first_occurrence(tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        a = _passages(["shared sentence."], "/src/a.txt")
        b = _passages(["shared sentence."], "/src/b.txt")
        kb.store.replace_source("/src/a.txt", "h", 1, 1.0, "s", a, ["x"], 1)
        kb.store.replace_source("/src/b.txt", "h", 1, 1.0, "s", b, ["x"], 1)
        assert kb.store.counts()["passages"] == 1
        assert kb.store.get_passages([a[0].id])[a[0].id].source == "/src/a.txt"
        kb.store.delete_sources(["/src/a.txt"])
        assert kb.store.orphans() == []
        assert kb.store.get_passages([a[0].id])[a[0].id].source == "/src/b.txt"


def test_a_long_lived_reader_picks_up_what_a_writer_saved(tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        _fill(kb, ["alpha one."])
    reader = KnowledgeBase.open(tmp_path / "kb", EMB)
    try:
        assert len(reader.vectors) == 1 and reader.refresh() is False
        with KnowledgeBase.open(tmp_path / "kb", EMB, write=True) as kb:
            new = _fill(kb, ["beta two."], path="/src/b.txt")
        # before refreshing, vectors the reader has not loaded yet reconstruct as zeros instead of failing
        missing = reader.vectors.reconstruct(np.array([reader.store.vector_ids_for([new[0].id])[new[0].id]]))
        assert not missing.any()
        assert reader.refresh() is True
        assert len(reader.vectors) == 2 and reader.bm25.search("beta", 1)[0][0] == new[0].id
    finally:
        reader.close()


def test_a_reader_sees_bm25_in_step_with_the_vectors_after_a_kill(tmp_path):
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        _fill(kb, ["alpha one."])
        # a killed ingest: vectors checkpointed and recorded in SQLite, BM25 never synced
        ps = _passages(["beta two."], "/src/b.txt")
        kb.store.replace_source("/src/b.txt", "h", 1, 1.0, "s", ps, [p.text for p in ps], 1)
        ids = kb.store.next_vector_ids(1)
        kb.vectors.add(np.array(ids), np.eye(4, dtype=np.float32)[1:2])
        kb.vectors.save()
        kb.store.assign_vectors([(ps[0].id, ids[0])])
    with KnowledgeBase.open(tmp_path / "kb", EMB) as reader:
        assert reader.bm25.search("beta", 1)[0][0] == ps[0].id  # rebuilt in memory, nothing written
    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True) as kb:
        assert kb.repair()["bm25_rebuilt"] == 0  # the write-open already saved the rebuilt index
    from knowledge.sparse import BM25Index
    from rag.config import RetrievalConfig

    assert ps[0].id in BM25Index(tmp_path / "kb" / "bm25", RetrievalConfig()).ids()


def test_check_notes_a_running_writer_and_finds_lost_vectors(tmp_path):
    from knowledge.health import check
    from pipelines.config import Settings

    with KnowledgeBase.open(tmp_path / "kb", EMB, write=True, create=True) as kb:
        ps = _fill(kb, ["alpha one.", "beta two."])
        assert check(tmp_path / "kb", Settings()).notes[0].startswith("another process is writing")
        kb.vectors.remove(np.array([kb.store.vector_ids_for([ps[0].id])[ps[0].id]]))
        kb.vectors.save()
    report = check(tmp_path / "kb", Settings())
    assert not report.ok and "1 passages without a vector" in report.problems[0] and report.notes == []
