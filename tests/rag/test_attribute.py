from rag.attribute import attribute, content_words
from rag.types import Hit, Passage


def _hit(pid, text, rank):
    return Hit(Passage(pid, text, f"/d/{pid}.md", f"/d/{pid}.md"), 1.0 / rank, rank)


CONTEXT = [
    _hit("ferry", "The MV Saltwren crossing takes 2 h 15 min and carries 420 passengers.", 1),
    _hit("kiln", "The Velmora kiln reaches 1,340 °C, hot enough to fire porcelain.", 2),
]


def test_numbers_are_normalised_and_stop_words_ignored():
    assert content_words("The kiln reaches 1,340 degrees.") == {"kiln", "reaches", "1340", "degrees"}


def test_each_supported_sentence_cites_its_passage_in_order():
    cites = attribute("The Velmora kiln reaches 1,340 °C. The Saltwren carries 420 passengers.", CONTEXT)
    assert [(c.marker, c.passage_id, c.kind) for c in cites] == [(2, "kiln", "attributed"), (1, "ferry", "attributed")]


def test_unsupported_answers_cite_nothing():
    assert attribute("The capital of France is Paris.", CONTEXT) == ()
    assert attribute("Velmora ceramics sells teapots in Paris and Rome.", CONTEXT) == ()
    assert attribute("Anything.", []) == ()
