"""Map-reduce summaries: a source too long for one prompt is summarised part by part, then the parts' summaries."""

from __future__ import annotations

import re

from pipelines.qa import QAPipeline
from rag.config import PromptConfig
from rag.prompt import PromptBuilder
from rag.types import Hit, Passage


class WordGenerator:
    """Counts words as tokens; a summary names how many passages its prompt held."""

    model_id, adapter_id = "words", None

    def __init__(self, window: int) -> None:
        self.context_window, self.prompts = window, []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def render(self, messages):  # noqa: ANN001, ANN201
        return "\n".join(m["content"] for m in messages)

    def generate(self, prompt: str, **overrides) -> str:  # noqa: ANN003
        self.prompts.append(prompt)
        return f"<passage id=\"1\">Summary of {len(re.findall(r'<passage id=', prompt))} parts [1]."


def test_a_long_source_is_summarised_in_parts_then_reduced():
    passages = [Passage(f"p{i}", " ".join(["word"] * 60), "/d/a.md", "/d/a.md", order=i) for i in range(6)]
    hits = [Hit(p, 1.0, i + 1) for i, p in enumerate(passages)]
    generator = WordGenerator(window=260)
    pipe = QAPipeline.__new__(QAPipeline)  # only the builder and the generator take part in map-reduce
    pipe.generator = generator
    pipe.builder = PromptBuilder(PromptConfig(reserve_tokens=0), generator, max_new_tokens=16)
    assert pipe.builder.build_summary(hits).truncated  # one prompt cannot hold the source
    text = pipe._map_reduce(hits, None)
    held = [len(re.findall(r"<passage id=", p)) for p in generator.prompts]
    assert sum(held[:-1]) == 6 and len(held) > 2  # every passage was read once in a part, then one reduce step
    assert text == f"Summary of {held[-1]} parts."  # markers of the reduce prompt and echoed markup are dropped
