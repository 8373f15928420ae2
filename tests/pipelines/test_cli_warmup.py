"""`rag warmup` makes the one-time model files during set-up (`make demo`), so the first ask is not the slow one."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from rag.generation.backends import chosen_backend


@pytest.mark.slow
@pytest.mark.integration
def test_warmup_loads_the_configured_models(generator, capsys) -> None:
    assert main(["warmup"]) == 0  # the session's generator has converted the bundled model into the default cache
    out = capsys.readouterr().out
    # the backend `auto` resolves to here: llama.cpp where it is built, else transformers
    assert out.startswith("ready: sentence-transformers/all-MiniLM-L6-v2 (torch), "
                          f"HuggingFaceTB/SmolLM2-135M-Instruct ({chosen_backend('auto')})")
    assert main(["--backend", "transformers", "warmup"]) == 0
    assert "HuggingFaceTB/SmolLM2-135M-Instruct (transformers)" in capsys.readouterr().out
