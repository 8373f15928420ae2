"""The one home of content words, sentences, numbers and names (rag.text)."""

from rag.text import contains, content_words, names, numbers, split_sentences, strip_markers


def test_content_words_drop_stop_words_and_normalise_numbers():
    assert content_words("The kiln reaches 1,340 degrees; the kiln!") == ["kiln", "reaches", "1340", "degrees"]
    assert content_words("What is it?") == []


def test_a_contraction_is_its_negation_with_either_apostrophe():
    """Writers and larger models use the curly apostrophe: "doesn’t" must read as "doesn't", and neither leaves a
    content word "doesn" that no passage holds."""
    for text in ("It doesn't reach the kiln", "It doesn’t reach the kiln", "It does not reach the kiln"):
        assert content_words(text) == ["reach", "kiln"], text
    assert contains("The kiln doesn’t cool", "doesn't cool") and contains("It won’t stop", "won't stop")
    assert content_words("Who won the award?") == ["won", "award"]


def test_contains_is_normalised_and_on_word_boundaries():
    assert contains("It reaches 1340 °C.", "1,340")
    assert contains("The MV Saltwren", "mv saltwren")
    assert not contains("It reaches 13400 °C.", "1340")
    assert not contains("anything", "")


def test_numbers_and_names_are_the_spans_a_claim_must_not_invent():
    assert numbers("At 06:40, 1,340 °C and 9.2 MW.") == ["06", "40", "1,340", "9.2"]
    assert names("The captain of the MV Saltwren is Rhona Callister. Firings are rare.") == [
        "MV Saltwren", "Rhona Callister"]


def test_sentences_keep_trailing_markers_and_do_not_split_decimals():
    assert split_sentences("It is 1,340 °C [1]. [2] Built in 1871. It makes 9.2 MW.") == [
        "It is 1,340 °C [1]. [2]", "Built in 1871.", "It makes 9.2 MW."]
    assert split_sentences("Steps:\n\n- one\n- two") == ["Steps:", "- one", "- two"]
    # a negative number that starts a line is no list item: "a nice value of\n-20 on all other platforms."
    assert split_sentences("A nice value of\n-20 on all.\n* three") == ["A nice value of\n-20 on all.", "* three"]
    assert strip_markers("It is hot [1, 2].") == "It is hot."
