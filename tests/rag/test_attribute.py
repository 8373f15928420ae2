"""Honest citations: markers are checked against their passage, attribution needs support."""

import pytest

from fakes import KeywordEmbedder
from rag.grounding.attribute import claims, ground_citations
from rag.config import AnswerConfig
from rag.grounding.ground import Grounder
from rag.types import Hit, Passage

KEYWORDS = ["kiln", "velmora", "saltwren", "crossing", "porcelain", "passengers"]


def _hit(pid, text, rank):
    return Hit(Passage(pid, text, f"/docs/{pid}.md", f"/docs/{pid}.md", metadata={"section": "Facts"}), 1.0 / rank,
               rank)


CONTEXT = [
    _hit("ferry", "The MV Saltwren crossing takes 2 h 15 min and carries 420 passengers.", 1),
    _hit("kiln", "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain.", 2),
]


@pytest.fixture
def grounder():
    return Grounder(AnswerConfig(), KeywordEmbedder(KEYWORDS))


def _ground(grounder, answer, question="What do the passages say?"):
    return ground_citations(answer, grounder.evidence(question, CONTEXT), grounder,
                            label=lambda p: p.doc_id.removeprefix("/docs/") + " § Facts")


def test_claims_carry_their_markers_and_skip_empty_sentences():
    assert claims("It is 1,340 °C [2]. [1] OK. The Saltwren carries 420 passengers.") == [
        ("It is 1,340 °C [2]. [1] OK.", [2, 1]), ("The Saltwren carries 420 passengers.", [])]


def test_a_marker_whose_passage_supports_the_sentence_is_supported(grounder):
    grounded = _ground(grounder, "The Velmora kiln reaches 1,340 °C [2].")
    assert [(c.marker, c.passage_id, c.kind, c.location) for c in grounded.citations] == [
        (2, "kiln", "supported", "kiln.md § Facts")]
    assert grounded.supported is True


def test_a_marker_to_the_wrong_passage_is_unsupported_and_the_right_one_attributed(grounder):
    grounded = _ground(grounder, "The Velmora kiln reaches 1,340 °C [1].")
    assert [(c.marker, c.kind) for c in grounded.citations] == [(1, "unsupported"), (2, "attributed")]
    assert grounded.supported is True  # the claim itself is supported, by passage 2


def test_sentences_without_markers_are_attributed_only_when_supported(grounder):
    grounded = _ground(grounder, "The Velmora kiln reaches 1,340 °C. The Saltwren carries 420 passengers.")
    assert [(c.marker, c.kind) for c in grounded.citations] == [(2, "attributed"), (1, "attributed")]
    wrong = _ground(grounder, "The Velmora kiln reaches 900 °C.")
    assert wrong.citations == () and wrong.supported is False
    assert _ground(grounder, "Yes.").supported is None  # no claim to check
