import pytest
import torch

from knowledge.config import DistillConfig
from knowledge.distill.data import Example, Prompter, read_jsonl, write_jsonl
from knowledge.distill.train import IGNORE, encode, train_lora
from rag.generation.generate import HFGenerator

FACT = "The Velmora kiln reaches 1280 degrees Celsius."
QUESTION = "What temperature does the Velmora kiln reach?"
TINY = DistillConfig(lora_r=8, lora_alpha=16, learning_rate=2e-3, max_steps=4, epochs=4, batch_size=2, max_seq_len=128,
                     lora_dropout=0.0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two OpenMP threads on a shared 2-core box spin against each other (10x slower backward passes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _examples(prompter):
    restate = "What does the Velmora workshop note say?"
    return [Example("context", prompter.closed(QUESTION), FACT, "p1", QUESTION),
            Example("restatement", prompter.closed(restate), f"According to the Velmora note: {FACT}", "p1", restate),
            Example("context", prompter.closed("held out?"), "never trained", "p1", "held out?", split="holdout")]


def test_encode_masks_the_prompt_and_keeps_the_answer(generator):
    prompter = Prompter(generator)
    ids, labels = encode(_examples(prompter)[:1], generator.tokenizer, 128)[0]
    answer = generator.tokenizer(FACT, add_special_tokens=False)["input_ids"] + [generator.tokenizer.eos_token_id]
    assert ids[-len(answer):] == answer and labels[-len(answer):] == answer
    assert set(labels[: -len(answer)]) == {IGNORE}
    short_ids, short_labels = encode(_examples(prompter)[:1], generator.tokenizer, 24)[0]
    assert len(short_ids) == 24 and short_labels[-12:] == answer[:12]  # a long answer keeps its start, not its EOS


@pytest.mark.slow
@pytest.mark.integration
def test_lora_training_raises_the_fact_likelihood_and_loads_back(generator, tmp_path):
    prompter = Prompter(generator)
    before = generator.loglikelihood(prompter.closed(QUESTION), FACT)
    result = train_lora(_examples(prompter), TINY, generator.config, tmp_path, progress=False)
    assert result.steps == 4 and result.examples == 2  # the held-out example is not trained on
    assert (tmp_path / "adapter_config.json").is_file()
    adapted = HFGenerator(generator.config, adapter=str(tmp_path))
    after = adapted.loglikelihood(prompter.closed(QUESTION), FACT)
    assert after > before + 2.0, (before, after)
    assert adapted.adapter_id == tmp_path.name


@pytest.mark.slow
def test_empty_data_is_refused(generator, tmp_path):
    prompter = Prompter(generator)
    with pytest.raises(ValueError, match="no training examples"):
        train_lora(_examples(prompter)[2:], TINY, generator.config, tmp_path)


def test_batches_cover_every_row_once_per_epoch_grouping_similar_lengths():
    import random

    from knowledge.distill.train import batches

    rows = [([0] * n, [0] * n) for n in [5, 300, 6, 310, 7, 320, 8, 330]]
    out = batches(rows, 2, random.Random(0))
    assert sorted(i for b in out for i in b) == list(range(8))
    assert all(len({len(rows[i][0]) > 100 for i in b}) == 1 for b in out)  # short rows never padded to long ones


def test_jsonl_round_trip_and_hash_changes_with_content(tmp_path, generator):
    examples = _examples(Prompter(generator))
    h1 = write_jsonl(examples, tmp_path / "a.jsonl")
    assert read_jsonl(tmp_path / "a.jsonl") == examples
    assert write_jsonl(examples[:2], tmp_path / "b.jsonl") != h1
    (tmp_path / "c.jsonl").write_text('{"kind": "x"}\n')
    with pytest.raises(ValueError, match="c.jsonl:1"):
        read_jsonl(tmp_path / "c.jsonl")


def test_answer_loss_equals_the_models_own_loss_and_passes_accumulate_the_same_gradient(generator):
    """The LM head on answer positions only, and token-bounded passes, must not change the step."""
    from knowledge.config import DistillConfig
    from knowledge.distill.train import answer_loss, collate, lora_model, micro_batches, train_step
    from rag.generation.hf_model import load_base

    prompter = Prompter(generator)
    rows = encode(_examples(prompter), generator.tokenizer, 128)
    rows = [rows[0], rows[1], (rows[0][0] * 3, [IGNORE] * len(rows[0][0]) * 2 + rows[0][1])]  # one long row
    base, tokenizer = load_base(generator.config)
    torch.manual_seed(0)
    model = lora_model(base, DistillConfig(lora_r=4, lora_alpha=8), None)
    for name, p in model.named_parameters():  # a non-zero B, so the LoRA gradient of A is not zero either
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    batch = collate(rows, tokenizer.pad_token_id)
    with torch.no_grad():
        assert float(answer_loss(model, batch)) == pytest.approx(float(model(**batch).loss), rel=1e-5)

    def grads(max_tokens):
        model.zero_grad()
        loss = train_step(model, rows, tokenizer.pad_token_id, max_tokens)
        return loss, [p.grad.clone() for p in model.parameters() if p.requires_grad]

    assert len(micro_batches(rows, 64)) > 1 and len(micro_batches(rows, 10_000)) == 1
    one_loss, one = grads(10_000)
    split_loss, split = grads(64)
    assert split_loss == pytest.approx(one_loss, rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(one, split))
