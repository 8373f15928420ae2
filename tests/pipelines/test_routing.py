"""``auto`` routing serves an adapter's closed-book answer only when the top passage vouches for it."""

import pytest

from pipelines.config import Settings
from pipelines.qa import QAPipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Adapter:
    """A closed-book model that says one fixed thing."""

    adapter_id = "fake"

    def __init__(self, text):
        self.text = text

    def generate(self, prompt, **kw):
        return self.text


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
    finally:
        pipe.close()
