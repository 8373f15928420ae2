"""``auto`` routing serves an adapter's closed-book answer only when the top passage vouches for it."""

import pytest

from pipelines.config import Settings
from pipelines.qa import QAPipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Adapter:
    """A closed-book model that says one fixed thing."""

    adapter_id = "fake"

    def __init__(self, text):
        self.text, self.taken = text, 0

    def stream(self, prompt, **kw):
        for i, word in enumerate(self.text.split(" ")):
            self.taken += 1
            yield word if i == 0 else " " + word


def test_a_closed_book_answer_is_verified_against_a_passage_about_the_question(sample_kb, embedder, generator):
    settings = Settings().override({"kb.path": str(sample_kb), "log.enabled": False})
    pipe = QAPipeline.from_config(settings, embedder=embedder, generator=generator)
    try:
        kiln = "What temperature does the Velmora kiln reach?"
        top = pipe.retriever.retrieve(kiln)[0]
        assert "1,340" in top.passage.text
        pipe.closed_generator = Adapter("The Velmora kiln reaches 1,340 °C.")
        assert pipe.closed_book.routed(kiln, top) == "The Velmora kiln reaches 1,340 °C."
        # the same passage does not vouch for another kiln's temperature, nor for a name it was not asked for
        assert pipe.closed_book.routed("What temperature does the Brannock kiln reach?", top) is None
        assert pipe.closed_book.routed("Who built the Velmora kiln?", top) is None
        # a taught fact is one sentence: what the adapter adds after it is neither generated nor checked
        pipe.closed_generator = Adapter("The Velmora kiln reaches 1,340 °C. Agnes Fell built it in 1902 with bricks.")
        assert pipe.closed_book.routed(kiln, top) == "The Velmora kiln reaches 1,340 °C."
        assert pipe.closed_generator.taken == 7  # the first sentence and the word that ends it
    finally:
        pipe.close()
