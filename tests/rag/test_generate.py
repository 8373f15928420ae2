"""The transformers generator on the real bundled SmolLM2: cache, decoding paths, scoring, LoRA adapters, errors."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import rag.generation.hf_model as hf_model
from rag.config import GenerationConfig
from rag.errors import ModelLoadError
from rag.batching import padded_batches
from rag.generation.generate import HFGenerator, _common_prefix
from rag.generation.hf_model import gguf_cache_dir
from rag.models import BUNDLED_LLMS, package_file

pytestmark = pytest.mark.integration

QUESTIONS = ["What is the capital of France?", "Explain photosynthesis in one sentence."]
# prefill_dtype "auto" is bf16 only on CPUs with native bf16: the decoding paths run in both on every machine
# (bf16 runs, slowly, on AVX2 too), so an AVX2 machine catches what an AVX512 one would
PREFILLS = ["float32", "bfloat16"]


def _sibling(generator: HFGenerator, **changes: object) -> HFGenerator:
    """Another generator sharing the fixture's loaded base model (no second load)."""
    config = generator.config.model_copy(update=changes)
    other = HFGenerator(config, adapter=changes.get("adapter"))  # type: ignore[arg-type]
    other.__dict__["_base"] = generator._base
    return other


def _prompt(generator: HFGenerator, question: str) -> str:
    return generator.render([{"role": "user", "content": question}])


@pytest.mark.slow
def test_gguf_cache_is_created_once_then_reused(generator, tmp_path, monkeypatch, capsys) -> None:
    config = GenerationConfig(max_new_tokens=12, cache_dir=str(tmp_path))
    gguf = package_file(*BUNDLED_LLMS[config.model])
    first = HFGenerator(config)
    first.model  # noqa: B018 - converts into tmp_path
    said = capsys.readouterr().err  # one progress line says what the half minute is for; transformers' bars hidden
    assert f"First use: converting {gguf.name} for transformers, once" in said and "step 4/4" in said
    assert "GGUF tensors" not in said
    folder = gguf_cache_dir(config, gguf)
    assert (folder / "model.safetensors").is_file()
    assert json.loads((folder / "source.json").read_text())["size"] == gguf.stat().st_size
    assert [p.name for p in tmp_path.joinpath("llm").iterdir()] == [folder.name]  # no temp folder left behind

    def no_conversion(*_: object) -> None:
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(hf_model, "_convert_gguf", no_conversion)
    second = HFGenerator(config)
    prompt = _prompt(generator, QUESTIONS[0])
    assert second.generate(prompt) == generator.generate(prompt, max_new_tokens=12)


@pytest.mark.parametrize("prefill", PREFILLS)
def test_stream_joins_to_generate_and_stats_are_filled(generator, prefill) -> None:
    gen = _sibling(generator, prefill_dtype=prefill)
    prompt = _prompt(gen, QUESTIONS[1])
    pieces = list(gen.stream(prompt, max_new_tokens=24))
    assert len(pieces) > 3
    assert "".join(pieces) == gen.generate(prompt, max_new_tokens=24)
    stats = gen.last_stats
    assert stats["prompt_tokens"] == gen.count_tokens(prompt)
    assert 0 < stats["completion_tokens"] <= 24
    assert 0 < stats["first_token_s"] <= stats["total_s"]


def test_manual_decoding_matches_transformers_greedy(generator) -> None:
    fp32 = _sibling(generator, dtype="float32", prefill_dtype="float32")
    for question in QUESTIONS:
        prompt = _prompt(generator, question)
        ids = generator.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = generator.model.generate(**ids, max_new_tokens=20, do_sample=False)
        reference = generator.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert fp32.generate(prompt, max_new_tokens=20) == reference


def test_generate_batch_matches_single_prompts(generator) -> None:
    prompts = [_prompt(generator, "Name a fruit."), _prompt(generator, QUESTIONS[1])]
    fp32 = _sibling(generator, dtype="float32", prefill_dtype="float32")
    assert fp32.generate_batch(prompts, max_new_tokens=12) == [fp32.generate(p, max_new_tokens=12) for p in prompts]


def test_a_passage_asked_many_questions_is_prefilled_once_with_the_same_answers(generator) -> None:
    passage = ("The Velmora kiln reaches 1,340 degrees, hot enough to fire true porcelain. A full firing takes 31 "
               "hours, followed by three days of cooling. The workshop was founded in 1987 by Ilse Marrow.")
    questions = ["How hot does the kiln get?", "How long does a firing take?", "Who founded the workshop?"]
    prompts = [_prompt(generator, f"{passage}\n\nQuestion: {q}") for q in questions]
    rows = [generator.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert _common_prefix(rows) > 40  # the system prompt and the passage: the batch shares their KV cache
    fp32 = _sibling(generator, dtype="float32", prefill_dtype="float32")
    assert fp32.generate_batch(prompts, max_new_tokens=16) == [fp32.generate(p, max_new_tokens=16) for p in prompts]


def test_common_prefix_leaves_each_row_a_token_of_its_own() -> None:
    assert _common_prefix([[1, 2, 3, 4], [1, 2, 3, 5]]) == 3
    assert _common_prefix([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert _common_prefix([[7, 2], [1, 2]]) == 0


def test_generate_batch_in_small_batches_keeps_the_callers_order(generator) -> None:
    # three prompts of different lengths, two per batch: the batches run shortest first, answers come back in order
    prompts = [_prompt(generator, QUESTIONS[1]), _prompt(generator, "Name a fruit."), _prompt(generator, "Say hi.")]
    fp32 = _sibling(generator, dtype="float32", prefill_dtype="float32")
    assert fp32.generate_batch(prompts, batch_size=2, max_new_tokens=8) == [
        fp32.generate(p, max_new_tokens=8) for p in prompts]
    # a token budget below every prompt's length: each prompt runs alone, the answers do not change
    assert fp32.generate_batch(prompts, batch_tokens=1, max_new_tokens=8) == [
        fp32.generate(p, max_new_tokens=8) for p in prompts]


def test_batches_bound_prompts_and_padded_tokens() -> None:
    lengths = [10, 30, 10, 20, 50, 400]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches = padded_batches(order, lengths, tokens=100, size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [i for b in batches for i in b] == order  # shortest first, nothing reordered
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100
    assert batches == [[0, 2, 3], [1, 4], [5]]


@pytest.mark.parametrize("prefill", PREFILLS)
def test_sampling_is_seeded(generator, prefill) -> None:
    gen = _sibling(generator, prefill_dtype=prefill)
    prompt = _prompt(gen, "Write a word.")
    first = gen.generate(prompt, temperature=1.0, max_new_tokens=12)
    assert gen.generate(prompt, temperature=1.0, max_new_tokens=12) == first
    with pytest.raises(ValueError, match="unknown generation override"):
        gen.generate(prompt, beams=2)


def test_choose_picks_the_obvious_option(generator) -> None:
    prompt = _prompt(generator, "What is the capital of France? Answer with one word.")
    best, scores = generator.choose(prompt, ["Paris", "Berlin", "Tokyo"])
    assert best == "Paris"
    assert scores["Paris"] == pytest.approx(generator.loglikelihood(prompt, "Paris"), abs=1e-3)
    assert all(score < 0 for score in scores.values())


def test_context_window_and_token_count(generator) -> None:
    assert generator.context_window == 8192
    assert _sibling(generator, context_window=1024).context_window == 1024
    assert generator.count_tokens("hello world") == 2


def test_lora_adapter_changes_logits(generator, tmp_path) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(copy.deepcopy(generator.base_model()), lora).save_pretrained(tmp_path / "tiny")
    adapted = _sibling(generator, adapter=str(tmp_path / "tiny"))
    assert adapted.adapter_id == "tiny" and generator.adapter_id is None
    ids = generator.tokenizer(_prompt(generator, QUESTIONS[0]), return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        base_logits = generator.model(input_ids=ids).logits
        adapted_logits = adapted.model(input_ids=ids).logits
        untouched = adapted.base_model()(input_ids=ids).logits
    assert not torch.allclose(base_logits, adapted_logits, atol=1e-3)
    assert torch.equal(base_logits, untouched)  # merging worked on a copy


def test_bad_adapter_path_names_the_path(generator, tmp_path) -> None:
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(ModelLoadError, match="no-such-adapter"):
        _sibling(generator, adapter=str(missing)).model  # noqa: B018
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="broken"):
        _sibling(generator, adapter=str(tmp_path / "broken")).model  # noqa: B018


def test_wrong_model_path_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="neither bundled nor a local path"):
        HFGenerator(GenerationConfig(model=str(tmp_path / "missing"))).model  # noqa: B018
    with pytest.raises(ModelLoadError) as info:
        HFGenerator(GenerationConfig(model=str(tmp_path))).model  # noqa: B018
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


def test_choose_shares_the_prompt_pass_without_changing_scores(generator) -> None:
    prompt = _prompt(generator, "Is the sky blue on a clear day? Answer yes, no or maybe.")
    _, scores = generator.choose(prompt, ["yes", "no", "maybe not"])
    for option, score in scores.items():
        assert score == pytest.approx(generator.loglikelihood(prompt, option), abs=1e-3)
