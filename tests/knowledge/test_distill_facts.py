import pytest

from knowledge.distill.facts import (PROBE_WRAPPERS, TRAIN_WRAPPERS, first_sentence, is_correct, key_spans,
                                     rephrase, sentence_with, supported)
from rag.text import normalise

KILN = "The Velmora kiln reaches 1,340 °C, hot enough to fire true porcelain. It was built by Anna Kestrel in 1931."


@pytest.mark.parametrize(("answer", "question", "spans"), [
    ("The Velmora kiln reaches 1,340 °C [1].", "What temperature does the Velmora kiln reach?", ("1,340",)),
    ("It was built by Anna Kestrel.", "Who built the Velmora kiln?", ("Anna Kestrel",)),
    ("The kiln was built in 1931 by Anna Kestrel.", "When was the kiln built?", ("1931", "Anna Kestrel")),
    ("The Rekul LOBR-24 is painted maroon.", "What colour is the Rekul LOBR-24?", ("painted", "maroon")),
    ("The Velmora kiln.", "What is the Velmora kiln?", ()),
])
def test_key_spans_are_what_the_question_does_not_already_say(answer, question, spans):
    assert key_spans(answer, question) == spans


def test_support_needs_every_span_in_the_passage():
    assert supported(("1,340",), KILN) and supported(("1340", "Anna Kestrel"), KILN)
    assert not supported(("1,250",), KILN) and not supported((), KILN)
    assert not supported(("Anna Kestrel", "1932"), KILN)


def test_correctness_is_normalised_containment_of_every_span():
    assert is_correct("It reaches 1340 degrees.", ("1,340",))
    assert is_correct("ANNA KESTREL built it", ("Anna Kestrel",))
    assert not is_correct("It reaches 11,340 degrees.", ("1,340",))  # whole tokens, not substrings
    assert not is_correct("It was Anna.", ("Anna Kestrel",)) and not is_correct("anything", ())
    assert normalise("1,340 °C, Port-Aubrey!") == "1340 c port aubrey"


def test_first_sentence_drops_markers_and_padding():
    assert first_sentence("It weighs 3.5 kg [1]. It is blue. It is blue.") == "It weighs 3.5 kg."
    assert first_sentence("No full stop here") == "No full stop here"


def test_rephrasings_keep_the_question_and_the_families_never_overlap():
    train, probe = rephrase("Who built the kiln?", TRAIN_WRAPPERS), rephrase("Who built the kiln?", PROBE_WRAPPERS)
    assert "Who built the kiln?" in train and "Tell me, who built the kiln?" in train
    assert all("who built the kiln?" in p.lower() for p in train + probe)
    assert not set(train) & set(probe)
    assert sentence_with(("1931",), [KILN.split(". ")[0], KILN.split(". ")[1]]).startswith("It was built")


def test_answers_must_fit_the_question_type():
    from knowledge.distill.verify import fits_kind

    def fits(spans, question, answer=None):
        return fits_kind(spans, answer or " ".join(spans), question)

    assert not fits(("created", "machine"), "Who invented the Rekul LOBR-24?")
    assert fits(("Shigar Reknengar",), "Who invented the Rekul LOBR-24?")
    assert not fits(("Mirdrabra",), "How many units were made?")
    assert fits(("1,340",), "When was it built?") and fits(("maroon",), "What colour is it?")


def test_clean_answer_drops_passage_talk():
    from knowledge.distill.facts import clean_answer

    assert clean_answer("The passage mentions that the river Votordra runs through it [1]. More.") == \
        "The river Votordra runs through it."
    assert clean_answer("The answer is: Dramu's dog was Torlenqui.") == "Dramu's dog was Torlenqui."
    assert clean_answer("According to the passage [2], it weighs 300 kilograms.") == "It weighs 300 kilograms."
