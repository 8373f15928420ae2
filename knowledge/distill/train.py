"""LoRA fine-tuning of the base LLM on a round's examples, nanoGPT-style: seeds, settings, batches, one loop.

The loss is on the answer tokens only (the prompt is already rendered with the tokenizer's chat template, so the
model learns to answer closed-book exactly the way the QA pipeline asks). The adapter is written to ``out_dir``,
which the round keeps inside ``<kb>/adapters/.tmp-<id>``: a killed run never touches the active adapter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from knowledge.config import DistillConfig
from knowledge.distill.data import Example
from rag.config import GenerationConfig
from rag.generation.hf_model import load_base

IGNORE = -100  # label of tokens that carry no loss (the prompt, the padding)
PASS_TOKENS = 512  # padded tokens per forward/backward pass; a larger batch accumulates over several passes


@dataclass(frozen=True)
class TrainResult:
    steps: int
    examples: int
    first_loss: float
    last_loss: float
    seconds: float


def encode(examples: Sequence[Example], tokenizer: Any, max_len: int) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per example; labels mask the prompt; an over-long prompt loses its start."""
    rows = []
    for e in examples:
        prompt = tokenizer(e.prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(e.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        answer = answer[: max_len // 2] if len(answer) > max_len // 2 else answer
        prompt = prompt[-(max_len - len(answer)):]
        rows.append((prompt + answer, [IGNORE] * len(prompt) + answer))
    return rows


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; padding is masked out of attention and loss."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def batches(rows: Sequence[tuple[list[int], list[int]]], size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches in random order, each of rows of similar length (short closed-book rows are not
    padded to the length of an open-book row holding a passage: on a CPU, padding is most of the cost)."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    window = size * 8
    out = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start: start + window], key=lambda i: len(rows[i][0]))
        out += [chunk[i: i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def answer_loss(model: Any, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Next-token loss on the answer tokens, with the LM head applied to those positions only.

    The same value as ``model(**batch).loss``, but a 49k-word head over every prompt position was about a fifth of
    a step's compute and most of its memory (a batch of 8 x 384 fp32 logits is 600 MB), for positions whose loss is
    masked anyway.
    """
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    target = batch["labels"][:, 1:]
    keep = target != IGNORE
    logits = lm.lm_head(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, target[keep], reduction=reduction)


def micro_batches(rows: Sequence[tuple[list[int], list[int]]], max_tokens: int) -> list[list[int]]:
    """Split one step's rows (sorted by length) into passes of at most ``max_tokens`` padded tokens each.

    Activations, not weights, are a LoRA step's memory (about 1.4 MB per token for the 135M model): a batch of
    eight 384-token open-book rows held 4-5 GB. Passes accumulate gradients, so the step is the same step.
    """
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    out: list[list[int]] = [[]]
    for i in order:
        if out[-1] and (len(out[-1]) + 1) * len(rows[i][0]) > max_tokens:
            out.append([])
        out[-1].append(i)
    return out


def train_step(model: Any, rows: Sequence[tuple[list[int], list[int]]], pad_id: int, max_tokens: int) -> float:
    """Forward and backward over one batch in token-bounded passes; returns the batch's mean answer-token loss."""
    answer_tokens = sum(sum(y != IGNORE for y in labels[1:]) for _, labels in rows)
    total = 0.0
    for part in micro_batches(rows, max_tokens):
        loss = answer_loss(model, collate([rows[i] for i in part], pad_id), reduction="sum") / answer_tokens
        loss.backward()
        total += float(loss.detach())
    return total


def lora_model(base: Any, config: DistillConfig, init_adapter: Path | None) -> Any:
    """Wrap ``base`` with a fresh LoRA (all linear layers) or, when given, continue ``init_adapter``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_adapter is not None:
        return PeftModel.from_pretrained(base, str(init_adapter), is_trainable=True)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(base, lora)


def train_lora(
    examples: Sequence[Example], config: DistillConfig, generation: GenerationConfig, out_dir: Path, *,
    init_adapter: Path | None = None, on_step: Callable[[int, float], None] | None = None, progress: bool = True,
) -> TrainResult:
    """Train a LoRA adapter on the ``split == "train"`` examples and save it (peft format) into ``out_dir``.

    Example:
        >>> result = train_lora(examples, DistillConfig(max_steps=4), GenerationConfig(), Path("kb/adapters/.tmp-x"))
        >>> result.steps
        4
    """
    train = [e for e in examples if e.split == "train"]
    if not train:
        raise ValueError("no training examples: every example is held out or the dataset is empty")
    # seeds first, so a round is reproducible
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)

    base, tokenizer = load_base(generation)
    model = lora_model(base, config, init_adapter)
    rows = encode(train, tokenizer, config.max_seq_len)
    per_epoch = len(batches(rows, config.batch_size, random.Random(config.seed)))
    steps = per_epoch * config.epochs
    steps = min(steps, config.max_steps) if config.max_steps else steps
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)

    from tqdm.auto import tqdm

    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    order: list[list[int]] = []
    for step in tqdm(range(steps), desc="distill", unit="step", disable=not progress):
        if not order:  # a new epoch: reshuffle
            order = batches(rows, config.batch_size, rng)
        loss = train_step(model, [rows[i] for i in order.pop()], tokenizer.pad_token_id, PASS_TOKENS)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss)
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    model.save_pretrained(str(out_dir))
    return TrainResult(steps, len(rows), losses[0], losses[-1], time.perf_counter() - start)
