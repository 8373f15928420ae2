"""peft LoRA -> GGUF LoRA conversion: names, shapes, alpha, the q/k row permutation, refusals, promotion hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelLoadError
from rag.generation.lora_gguf import GGUF_NAME, _permute_rows, convert_peft_to_gguf
from rag.models import BUNDLED_LLMS, package_file

BASE = package_file(*BUNDLED_LLMS["HuggingFaceTB/SmolLM2-135M-Instruct"])


@pytest.fixture(scope="module")
def peft_adapter(tmp_path_factory, generator) -> Path:
    """A random (non-zero B) all-linear LoRA on the real base model, saved by peft."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("adapter")
    model = get_peft_model(generator.base_model(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                              init_lora_weights=False))
    model.save_pretrained(str(out))
    model.unload()  # leave the shared base model as it was
    return out


@pytest.mark.slow
def test_converts_every_lora_tensor_with_llama_cpp_names(peft_adapter) -> None:
    import gguf
    from safetensors.numpy import load_file

    path = convert_peft_to_gguf(peft_adapter, BASE)
    assert path == peft_adapter / GGUF_NAME
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(8.0)
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 30 * 7 * 2  # 30 blocks x q,k,v,o,gate,up,down x (A, B)
    peft = load_file(str(peft_adapter / "adapter_model.safetensors"))
    a = peft["base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"]
    assert np.array_equal(np.asarray(tensors["blk.0.attn_v.weight.lora_a"].data), a)  # stored as is
    q_b = peft["base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight"]
    assert np.array_equal(np.asarray(tensors["blk.2.attn_q.weight.lora_b"].data), _permute_rows(q_b, 9))
    assert not list(peft_adapter.glob(".tmp-*"))


@pytest.mark.slow
def test_q_and_k_of_the_bundled_gguf_are_row_permuted_like_the_conversion(generator) -> None:
    """Why lora_B of q/k is permuted: the GGUF's q/k weights are the transformers ones with rows permuted."""
    import gguf

    reader = gguf.GGUFReader(str(BASE))
    tensors = {t.name: t for t in reader.tensors}
    state = generator.base_model().state_dict()
    for name, hf_name, heads in (("blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 9),
                                 ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 3)):
        t = tensors[name]
        dequantised = gguf.dequantize(t.data, t.tensor_type).reshape(state[hf_name].shape)
        np.testing.assert_allclose(dequantised, _permute_rows(state[hf_name].numpy(), heads), atol=1e-6)


def test_refuses_what_it_cannot_convert(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not a peft LoRA adapter folder"):
        convert_peft_to_gguf(tmp_path, BASE)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8, "use_dora": True}))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="DoRA"):
        convert_peft_to_gguf(tmp_path, BASE)
    assert not list(tmp_path.glob("*.gguf"))
