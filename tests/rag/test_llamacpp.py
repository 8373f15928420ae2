"""The llama.cpp backend on the real bundled SmolLM2 GGUF: answers, streaming, stops, scoring, re-typing, LoRA."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed: pip install -e '.[llamacpp]'")

from pipelines.config import Settings  # noqa: E402
from rag.generation.backends import make_generator  # noqa: E402
from rag.config import GenerationConfig  # noqa: E402
from rag.errors import ModelLoadError  # noqa: E402
from rag.generation.gguf import retyped_gguf  # noqa: E402
from rag.generation.llamacpp import LlamaCppGenerator  # noqa: E402
from rag.generation.lora_gguf import GGUF_NAME  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILN = "What temperature does the Velmora kiln reach?"
KILN_PASSAGE = ("The Velmora kiln reaches 1,340 °C, hot enough to fire true porcelain. It was built in 1987 on Quarry "
                "Lane and is fired twice a month.")
FACT_Q = "Who keeps the Zorvath lighthouse?"
FACT_A = "The Zorvath lighthouse is kept by Imrie Calder."


@pytest.fixture(scope="module")
def llama() -> LlamaCppGenerator:
    gen = make_generator(GenerationConfig(backend="llamacpp", max_new_tokens=48))
    gen.llm  # noqa: B018 - load (and re-type, once) now
    return gen


def _ask(gen, question: str) -> str:
    return gen.render([{"role": "user", "content": question}])


def test_answers_the_sample_kiln_question_through_the_pipeline(llama, sample_kb, embedder) -> None:
    from pipelines.qa import QAPipeline

    settings = Settings().override({"kb.path": str(sample_kb), "generation.max_new_tokens": 64})
    pipe = QAPipeline.from_config(settings, embedder=embedder, generator=llama)
    try:
        answer = pipe.ask(KILN, log=False)
    finally:
        pipe.close()
    assert "1,340" in answer.text or "1340" in answer.text
    assert answer.timings["total_s"] >= answer.timings["first_token_s"] > 0


def test_stream_joins_to_generate_and_fills_stats(llama) -> None:
    prompt = _ask(llama, "Explain photosynthesis in one sentence.")
    pieces = list(llama.stream(prompt, max_new_tokens=24))
    assert len(pieces) > 3
    assert "".join(pieces) == llama.generate(prompt, max_new_tokens=24)
    stats = llama.last_stats
    assert stats["prompt_tokens"] == llama.count_tokens(prompt) and 0 < stats["completion_tokens"] <= 24
    assert stats["total_s"] >= stats["first_token_s"] > 0


def test_template_from_the_gguf_and_special_tokens_count_as_one(llama, generator) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert llama.render(messages) == generator.render(messages)  # the same template as transformers renders
    assert llama.count_tokens("<|im_start|>") == 1
    assert llama.count_tokens(llama.render(messages)) == generator.count_tokens(generator.render(messages))


def test_stop_strings_cut_the_answer(llama) -> None:
    prompt = _ask(llama, "Describe the sea in two sentences.")  # a multi-word answer (counting gives digits only)
    full = llama.generate(prompt, max_new_tokens=32)
    words = [w for w in full.split() if len(w) > 2]
    assert len(words) > 2, full
    stop = words[len(words) // 2]  # a word from the middle of the greedy answer
    cut = llama.generate(prompt, max_new_tokens=32, stop=[stop])
    assert cut == full[: full.index(stop)] and stop not in cut


def test_a_seed_repeats_whatever_was_asked_before(llama) -> None:
    prompt = _ask(llama, "Write a short poem about the sea.")
    first = llama.generate(prompt, temperature=0.9, max_new_tokens=16)
    assert llama.generate(prompt, temperature=0.9, max_new_tokens=16) == first  # the prompt is cached now
    llama.generate(_ask(llama, "Name a fruit."), max_new_tokens=4)  # another prompt sharing the template's start
    assert llama.generate(prompt, temperature=0.9, max_new_tokens=16) == first
    greedy = llama.generate(prompt, max_new_tokens=16)
    assert llama.generate(prompt, max_new_tokens=16) == greedy


@pytest.mark.parametrize("gguf_type", ["F16", "Q8_0", "source"])
def test_the_prompt_cache_does_not_change_the_logits(llama, gguf_type) -> None:
    """A cached prompt's first-token logits are those of a fresh evaluation, bit for bit.

    llama-cpp-python re-evaluates the last token of a fully cached prompt alone; a one-token batch takes llama.cpp's
    matrix-vector kernels, whose sums round differently from the batched ones (F16 on AVX512: 0.05 in a logit), so
    greedy near-ties and seeded samples changed with what was asked before (``LlamaCppGenerator._keep_cache``).
    """
    gen = llama if gguf_type == llama.config.gguf_type else LlamaCppGenerator(
        llama.config.model_copy(update={"gguf_type": gguf_type}))
    prompt = _ask(gen, "Describe the harbour at dawn.")
    gen.llm.reset()
    gen.generate(prompt, max_new_tokens=1)  # stops before the sampled token is evaluated: the logits stay the prompt's
    fresh = gen._logprobs()
    gen.generate(prompt, max_new_tokens=6)  # the cache holds the prompt and the answer's first tokens
    gen.generate(prompt, max_new_tokens=1)
    np.testing.assert_array_equal(gen._logprobs(), fresh)


def test_choose_scores_like_loglikelihood(llama) -> None:
    prompt = _ask(llama, "What is the capital of France? Answer with one word.")
    best, scores = llama.choose(prompt, ["Paris", "London", "Banana bread"])
    assert best == "Paris"
    for option, score in scores.items():
        assert llama.loglikelihood(prompt, option) == pytest.approx(score, abs=1e-3)


def test_bad_overrides_are_refused(llama) -> None:
    with pytest.raises(ValueError, match="unknown generation override"):
        llama.generate("x", beams=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        llama.generate("x", max_new_tokens=0)


def test_retyped_gguf_is_made_once(tmp_path, llama, capsys) -> None:
    first = retyped_gguf(llama.source_gguf, "Q8_0", tmp_path)
    said = capsys.readouterr().err  # one progress bar fed by the quantizer's log, not its line per tensor
    assert "First use: re-typing SmolLM2-135M-Instruct.Q4_1.gguf to Q8_0 for llama.cpp, once" in said
    assert "272/272" in said and "blk.0" not in said
    stamp = first.stat().st_mtime_ns
    assert retyped_gguf(llama.source_gguf, "Q8_0", tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp file left behind
    assert retyped_gguf(llama.source_gguf, "source", tmp_path) == llama.source_gguf


def test_models_load_without_extra_buffers_only_when_asked() -> None:
    """On AMX CPUs a quantized model in llama.cpp's AMX buffer crashes the process (the Q8_0 and source cases of the
    prompt-cache test above ran into it); ``model_params`` turns extra buffers off for the load and restores them."""
    import llama_cpp

    from rag.generation.llamacpp import amx_int8, model_params

    assert amx_int8(llama_cpp) == (b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info())
    default = llama_cpp.llama_cpp.llama_model_default_params
    with model_params(llama_cpp, extra_buffers=False):
        assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is False
    with model_params(llama_cpp, extra_buffers=True):
        assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is True
    assert llama_cpp.llama_cpp.llama_model_default_params is default


@pytest.mark.parametrize("gguf_type", ["BF16", "F16"])  # what "auto" picks on AVX512-BF16 and on AVX2 CPUs
def test_flash_attention_is_the_configured_one_and_keeps_the_answer(gguf_type) -> None:
    """``generation.flash_attn`` (off by default) reaches llama.cpp either way. The fused kernel
    sums in another order, so greedy text may differ after the answer (the docs bench: 79 of 80 answers
    identical), but the answer is the same, on either type."""
    import llama_cpp

    question = [{"role": "user", "content": f"{KILN_PASSAGE}\n\n{KILN}"}]
    for on, kind in ((True, llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED), (False, llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)):
        gen = LlamaCppGenerator(GenerationConfig(backend="llamacpp", max_new_tokens=48, gguf_type=gguf_type,
                                                 flash_attn=on))
        assert gen.llm.context_params.flash_attn_type == kind
        assert "1,340" in gen.generate(gen.render(question))


def test_missing_package_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import now raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install -e '\.\[llamacpp\]'"):
        make_generator(GenerationConfig(backend="llamacpp"))


def test_a_non_gguf_model_is_refused(tmp_path) -> None:
    gen = LlamaCppGenerator(GenerationConfig(backend="llamacpp", model=str(tmp_path)))
    with pytest.raises(ModelLoadError, match="needs a .gguf"):
        gen.llm  # noqa: B018


# ---- the adapter changes the answer the same way under both backends --------------------------------------------


def _train_fact_adapter(generator, out: Path) -> None:
    """A tiny LoRA (all linear layers) trained until greedy decoding states one invented fact."""
    import torch
    from peft import LoraConfig, get_peft_model

    from rag.generation.hf_model import load_base

    torch.manual_seed(0)
    base, tokenizer = load_base(generator.config)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
    prompt = tokenizer(_ask(generator, FACT_Q), add_special_tokens=False)["input_ids"]
    answer = tokenizer(FACT_A, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids, labels = torch.tensor([prompt + answer]), torch.tensor([[-100] * len(prompt) + answer])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(25):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(out))


def test_adapter_changes_the_answer_the_same_way_under_both_backends(generator, tmp_path) -> None:
    from rag.generation.generate import HFGenerator

    _train_fact_adapter(generator, tmp_path)
    config = GenerationConfig(max_new_tokens=24, prefill_dtype="float32")
    hf = HFGenerator(config, adapter=str(tmp_path))
    hf.__dict__["_base"] = generator._base  # the fixture's loaded base: no second load
    expected = hf.generate(_ask(hf, FACT_Q))
    assert "Imrie Calder" in expected

    # F16 (the default) keeps the weights as trained, so the greedy answer is the same token for token. Portable: the
    # trained answer's smallest top-2 logit gap is 8.7, the backends' log-probs differ by 0.04 (F16) and 1.2 (Q8_0)
    lossless = config.model_copy(update={"backend": "llamacpp", "gguf_type": "F16"})
    base = LlamaCppGenerator(lossless)
    adapted = LlamaCppGenerator(lossless, adapter=str(tmp_path))
    assert "Imrie Calder" not in base.generate(_ask(base, FACT_Q))  # the base model does not know it
    assert adapted.generate(_ask(adapted, FACT_Q)) == expected
    assert (tmp_path / GGUF_NAME).is_file() and adapted.adapter_id == tmp_path.name
    # Q8_0 quantizes weights and activations: the words may drift, the fact must not
    q8 = LlamaCppGenerator(lossless.model_copy(update={"gguf_type": "Q8_0"}), adapter=str(tmp_path))
    assert "Imrie Calder" in q8.generate(_ask(q8, FACT_Q))
