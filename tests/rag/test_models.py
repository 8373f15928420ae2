"""Where dtypes come from: ``auto`` follows the CPU, explicit settings do not (checked on every CPU by faking it)."""

from __future__ import annotations

import pytest
import torch

import rag.generate
import rag.models
from rag.config import GenerationConfig
from rag.generate import HFGenerator
from rag.models import pick_dtype


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_follows_the_cpu_and_explicit_settings_do_not(monkeypatch, fast_bf16) -> None:
    monkeypatch.setattr(rag.models, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert pick_dtype("auto") == (torch.bfloat16 if fast_bf16 else torch.float32)
    assert pick_dtype("float32") == torch.float32 and pick_dtype("bfloat16") == torch.bfloat16
    assert pick_dtype("auto", device="cuda") == torch.bfloat16


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_prefill_dtype_auto_follows_the_cpu(monkeypatch, fast_bf16) -> None:
    monkeypatch.setattr(rag.generate, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert HFGenerator(GenerationConfig()).bf16_prefill is fast_bf16  # constructors load nothing
    assert HFGenerator(GenerationConfig(prefill_dtype="float32")).bf16_prefill is False
    assert HFGenerator(GenerationConfig(prefill_dtype="bfloat16")).bf16_prefill is True
