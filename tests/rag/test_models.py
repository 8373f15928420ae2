"""Where dtypes come from: ``auto`` follows the CPU, explicit settings do not (checked on every CPU by faking it)."""

from __future__ import annotations

import pytest
import torch

import rag.generation.generate
import rag.models
from rag.config import GenerationConfig
from rag.generation.generate import HFGenerator
from rag.models import pick_dtype


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_follows_the_cpu_and_explicit_settings_do_not(monkeypatch, fast_bf16) -> None:
    monkeypatch.setattr(rag.models, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert pick_dtype("auto") == (torch.bfloat16 if fast_bf16 else torch.float32)
    assert pick_dtype("float32") == torch.float32 and pick_dtype("bfloat16") == torch.bfloat16
    assert pick_dtype("auto", device="cuda") == torch.bfloat16


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_prefill_dtype_auto_follows_the_cpu(monkeypatch, fast_bf16) -> None:
    monkeypatch.setattr(rag.generation.generate, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert HFGenerator(GenerationConfig()).bf16_prefill is fast_bf16  # constructors load nothing
    assert HFGenerator(GenerationConfig(prefill_dtype="float32")).bf16_prefill is False
    assert HFGenerator(GenerationConfig(prefill_dtype="bfloat16")).bf16_prefill is True


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_gguf_type_auto_is_bf16_only_where_the_cpu_has_native_bf16(monkeypatch, fast_bf16) -> None:
    import rag.generation.gguf

    monkeypatch.setattr(rag.generation.gguf, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert rag.generation.gguf.chosen_gguf_type("auto") == ("BF16" if fast_bf16 else "F16")
    assert rag.generation.gguf.chosen_gguf_type("Q8_0") == "Q8_0"


@pytest.mark.parametrize("installed", [True, False])
def test_backend_auto_is_llamacpp_only_where_it_is_installed(monkeypatch, installed) -> None:
    import importlib.util

    import rag.generation.backends

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real("json") if installed else None) if name == "llama_cpp" else real(name, *a))
    assert rag.generation.backends.chosen_backend("auto") == ("llamacpp" if installed else "transformers")
    assert rag.generation.backends.chosen_backend("transformers") == "transformers"
    if not installed:  # the factory follows the choice (constructors load nothing)
        assert type(rag.generation.backends.make_generator(GenerationConfig(backend="auto"))).__name__ == "HFGenerator"
