"""Transformers chat generator: manual KV-cache decoding, streaming, LoRA adapters.

The model comes from ``rag.generation.hf_model`` (the bundled GGUF is dequantised once into a safetensors cache). Decoding is fp32 (faster than
bf16 per token on CPU). With ``prefill_dtype = "auto"`` (or ``bf16_prefill=True``) the prompt is prefilled by a
bf16 copy (about 3x faster first token on CPUs with native bf16) and decoding continues in fp32 from the converted
KV cache. Output stays deterministic, but greedy answers differ from pure fp32 ones on a few prompts in ten
(near-tied tokens flip), see bench/answer.py; set ``prefill_dtype = "float32"`` for pure fp32.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from rag.config import GenerationConfig
from rag.batching import padded_batches
from rag.errors import ModelLoadError
from rag.generation.hf_model import first_line, load_base
from rag.models import cpu_has_fast_bf16

MAX_CONTEXT = 8192
MIN_SHARED_PREFIX = 16  # tokens; a shorter common prefix is not worth a separate prefill


def apply_adapter(base: Any, folder: str | Path) -> Any:
    """A copy of ``base`` with the LoRA adapter in ``folder`` merged in; ``ModelLoadError`` if it is not one."""
    from peft import PeftModel

    path = Path(folder).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"not a LoRA adapter folder (no adapter_config.json): {path}")
    try:
        peft_model = PeftModel.from_pretrained(copy.deepcopy(base), str(path), is_trainable=False)
        return peft_model.merge_and_unload().eval()
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot load LoRA adapter {path}: {first_line(exc)}") from exc


class HFGenerator:
    """A chat LLM loaded with transformers; implements ``rag.types.Generator``.

    Example:
        >>> gen = HFGenerator(GenerationConfig(max_new_tokens=16))
        >>> prompt = gen.render([{"role": "user", "content": "What is the capital of France?"}])
        >>> "Paris" in gen.generate(prompt)
        True
    """

    def __init__(self, config: GenerationConfig, adapter: str | None = None, *, bf16_prefill: bool | None = None,
                 base: HFGenerator | None = None) -> None:
        """``base``: another generator of the same model whose loaded weights this one shares (one copy in RAM)."""
        self.config = config
        if base is not None:
            if base.config.model != config.model:
                raise ValueError(f"cannot share {base.config.model}'s weights with a generator of {config.model}")
            self.__dict__["_base"] = base._base
        if bf16_prefill is None:  # "auto": bf16 prefill only where the CPU has native bf16 (3x faster first token)
            bf16_prefill = config.prefill_dtype == "bfloat16" or (config.prefill_dtype == "auto" and cpu_has_fast_bf16())
        self.bf16_prefill = bf16_prefill
        self.model_id = config.model
        self.adapter_path = adapter if adapter is not None else config.adapter
        self.adapter_id = Path(self.adapter_path).name if self.adapter_path else None
        self.last_stats: dict[str, float] = {}

    # ---- loading --------------------------------------------------------------------------------------------

    @cached_property
    def _base(self) -> tuple[Any, Any]:
        return load_base(self.config)

    def base_model(self) -> Any:
        """The un-adapted fp32 model (shared, do not modify in place)."""
        return self._base[0]

    @cached_property
    def tokenizer(self) -> Any:  # noqa: ANN401 - a transformers tokenizer, imported lazily
        return self._base[1]

    @cached_property
    def model(self) -> Any:
        """The model that decodes: the base with the adapter merged in, in the decode dtype."""
        model = self.base_model()
        if self.adapter_path:
            model = apply_adapter(model, self.adapter_path)
        if self.config.dtype == "bfloat16":
            model = (copy.deepcopy(model) if model is self.base_model() else model).to(torch.bfloat16)
        return model

    @property
    def prefill_bf16(self) -> bool:
        """True when a bf16 copy prefills the prompt while decoding stays fp32."""
        return self.bf16_prefill and self.config.dtype != "bfloat16"

    @cached_property
    def prefill_model(self) -> Any:
        if not self.prefill_bf16:
            return self.model
        return copy.deepcopy(self.model).to(torch.bfloat16)

    def warm_up(self) -> None:
        """Load now rather than at the first question (the first load converts the bundled GGUF, ~30 s)."""
        self.prefill_model  # noqa: B018 - loads the model too

    # ---- Generator protocol ---------------------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        if self.config.context_window:
            return self.config.context_window
        return min(int(getattr(self.model.config, "max_position_embeddings", MAX_CONTEXT)), MAX_CONTEXT)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the model sees it (a rendered prompt already holds its special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """Render chat messages with the model's template, ending where the assistant starts to answer."""
        return self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)

    def generate(self, prompt: str, **overrides: Any) -> str:
        """The answer to a rendered prompt; overrides: ``max_new_tokens``, ``temperature``, ``top_p``."""
        ids = list(self._decode(prompt, overrides))
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def stream(self, prompt: str, **overrides: Any) -> Iterator[str]:
        """Yield the answer's text as it is generated; the pieces join to ``generate(prompt)``."""
        ids: list[int] = []
        sent = ""
        for token in self._decode(prompt, overrides):
            ids.append(token)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                continue
            if len(text) > len(sent):
                yield text[len(sent) :]
                sent = text
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > len(sent):
            yield text[len(sent) :]

    # ---- decoding -------------------------------------------------------------------------------------------

    def _settings(self, overrides: Mapping[str, Any]) -> tuple[int, float, float]:
        unknown = set(overrides) - {"max_new_tokens", "temperature", "top_p"}
        if unknown:
            raise ValueError(f"unknown generation override(s): {sorted(unknown)}")
        max_new = int(overrides.get("max_new_tokens", self.config.max_new_tokens))
        temperature = float(overrides.get("temperature", self.config.temperature))
        top_p = float(overrides.get("top_p", self.config.top_p))
        if max_new <= 0 or temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(f"need max_new_tokens > 0, temperature >= 0, 0 < top_p <= 1; got {max_new}, {temperature}, {top_p}")
        return max_new, temperature, top_p

    @cached_property
    def _stop_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        stops = set(ids if isinstance(ids, list) else [ids]) | {self.tokenizer.eos_token_id}
        return stops - {None}

    def _decode(self, prompt: str, overrides: Mapping[str, Any]) -> Iterator[int]:
        """Yield new token ids: prefill (bf16 when enabled), then one fp32 step per token with the KV cache."""
        max_new, temperature, top_p = self._settings(overrides)
        rng = torch.Generator().manual_seed(self.config.seed) if temperature > 0 else None
        input_ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        start = time.perf_counter()
        stats = {"prompt_tokens": input_ids.shape[1], "completion_tokens": 0, "first_token_s": 0.0, "total_s": 0.0}
        self.last_stats = stats
        with torch.inference_mode():
            logits, cache = self._prefill(input_ids)
            for step in range(max_new):
                token = _pick(logits, temperature, top_p, rng)
                if step == 0:
                    stats["first_token_s"] = time.perf_counter() - start
                if token in self._stop_ids:
                    break
                stats["completion_tokens"] += 1
                stats["total_s"] = time.perf_counter() - start
                yield token
                if step + 1 < max_new:
                    out = self.model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True)
                    logits, cache = out.logits[0, -1].float(), out.cache
        stats["total_s"] = time.perf_counter() - start

    def _prefill(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, Any]:
        out = self.prefill_model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
        cache = out.cache
        if self.prefill_model is not self.model:
            dtype = next(self.model.parameters()).dtype
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.to(dtype), layer.values.to(dtype)
        return out.logits[0, -1].float(), cache

    # ---- batch and scoring (evaluation) ---------------------------------------------------------------------

    def generate_batch(self, prompts: Sequence[str], batch_size: int = 48, batch_tokens: int = 8192,
                       **overrides: Any) -> list[str]:
        """Greedy (or sampled) answers to many rendered prompts, same settings as generate, in the given order.

        Prompts run in text order, so prompts that share a beginning (the system prompt, a passage asked several
        questions) sit together, in batches of at most ``batch_size`` prompts and ``batch_tokens`` padded prompt
        tokens: memory stays bounded by one batch (a KV cache for hundreds of passage prompts at once is
        gigabytes). A batch's common token prefix is prefilled once and shared by every row; each row's rest is
        padded after it. On a CPU, where prefill is most of the cost, a passage asked twelve questions is read once
        instead of twelve times. The same prompt list always forms the same batches, so answers are reproducible.
        """
        if not prompts:
            return []
        max_new, temperature, top_p = self._settings(overrides)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=prompts.__getitem__)
        out: list[str] = [""] * len(prompts)
        stats = {"prompt_tokens": sum(map(len, encoded)), "completion_tokens": 0, "first_token_s": 0.0, "total_s": 0.0}
        start = time.perf_counter()
        stops = torch.tensor(sorted(self._stop_ids))
        for chunk in padded_batches(order, [len(e) for e in encoded], batch_tokens, max(1, batch_size)):
            if temperature > 0:
                torch.manual_seed(self.config.seed)
            new = self._generate_rows([encoded[i] for i in chunk], max_new, sampling)
            stats["completion_tokens"] += int((~torch.isin(new, stops)).sum())
            for i, text in zip(chunk, self.tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                out[i] = text
        stats["total_s"] = time.perf_counter() - start
        self.last_stats = stats
        return out

    def _generate_rows(self, rows: list[list[int]], max_new: int, sampling: dict[str, Any]) -> torch.Tensor:
        """New token ids for a batch of tokenized prompts: [shared prefix][padding][each row's rest]. Positions
        come from the attention mask, so the padding in the middle shifts nothing; the prefix's KV cache is
        computed once and repeated for every row."""
        shared = _common_prefix(rows) if len(rows) > 1 else 0
        shared = shared if shared >= MIN_SHARED_PREFIX else 0
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            rest = width - len(row) + shared
            ids[i, :shared], ids[i, rest:] = torch.tensor(row[:shared]), torch.tensor(row[shared:])
            mask[i, :shared], mask[i, rest:] = 1, 1
        kwargs: dict[str, Any] = {}
        with torch.inference_mode():
            if shared:
                cache = self.model(input_ids=ids[:1, :shared], use_cache=True).cache
                cache.batch_repeat_interleave(len(rows))
                kwargs["cache"] = cache
            generated = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new,
                                            pad_token_id=self.tokenizer.pad_token_id, **sampling, **kwargs)
        return generated[:, width:]

    def loglikelihood(self, prompt: str, continuation: str) -> float:
        """Sum of the log-probabilities of ``continuation``'s tokens right after the rendered ``prompt``."""
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        cont_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont_ids:
            raise ValueError(f"continuation has no tokens: {continuation!r}")
        ids = torch.tensor([prompt_ids + cont_ids])
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        return float(logprobs.gather(1, torch.tensor(cont_ids)[:, None]).sum())

    def choose(self, prompt: str, options: Sequence[str]) -> tuple[str, dict[str, float]]:
        """The option the model finds most likely after ``prompt``, and every option's log-likelihood."""
        if not options:
            raise ValueError("choose needs at least one option; got none")
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():  # one pass over the shared prompt; options only extend its KV cache
            out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores = {option: self._option_score(option, first, out.cache) for option in options}
        return max(scores, key=scores.__getitem__), scores

    def _option_score(self, option: str, first: torch.Tensor, cache: Any) -> float:
        ids = self.tokenizer(option, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"option has no tokens: {option!r}")
        score = float(first[ids[0]])
        if len(ids) > 1:
            out = self.model(input_ids=torch.tensor([ids[:-1]]), cache=copy.deepcopy(cache), use_cache=True)
            rest = torch.log_softmax(out.logits[0].float(), dim=-1)
            score += float(rest.gather(1, torch.tensor(ids[1:])[:, None]).sum())
        return score


def _pick(logits: torch.Tensor, temperature: float, top_p: float, rng: torch.Generator | None) -> int:
    """Greedy when ``temperature`` is 0, else nucleus sampling from ``rng``."""
    if temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True)
    keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p  # always keeps the top token
    sorted_probs = sorted_probs * keep
    choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=rng)
    return int(order[choice])


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all rows share, leaving every row at least one token of its own."""
    n = min(map(len, rows)) - 1
    first = rows[0]
    for j in range(max(n, 0)):
        if any(row[j] != first[j] for row in rows):
            return j
    return max(n, 0)
