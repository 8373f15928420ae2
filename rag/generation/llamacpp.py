"""llama.cpp generator, in process (llama-cpp-python): the bundled GGUF as is or re-typed once, LoRA as GGUF.

The GGUF is loaded directly, without the safetensors copy the transformers backend needs. ``gguf_type`` re-types
it once with llama.cpp's own quantizer into ``cache_dir`` (``rag.generation.gguf``): on
CPUs prefill speed depends on the weight type far more than decode speed does (see bench/answer.py). The chat
template comes from the GGUF's metadata and is rendered like transformers renders it; token counts for prompt
packing use llama.cpp's tokenizer. A peft adapter folder is served through its GGUF LoRA copy
(``adapter_model.gguf``, converted on first use when missing, see ``rag.generation.lora_gguf``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import GenerationConfig
from rag.errors import ModelLoadError
from rag.generation.gguf import chosen_gguf_type, gguf_lora, import_llama_cpp, retyped_gguf
from rag.models import BUNDLED_LLMS, offline_env, resolve_local

OVERRIDES = {"max_new_tokens", "temperature", "top_p", "stop"}
MAX_CONTEXT = 8192
_LOADING = threading.Lock()  # one load at a time while the default model parameters are replaced


def amx_int8(llama_cpp: Any) -> bool:  # noqa: ANN401 - the llama_cpp module
    """True when this llama.cpp build runs quantized matrix products on the CPU's AMX tiles (``AMX_INT8 = 1``)."""
    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


@contextmanager
def model_params(llama_cpp: Any, extra_buffers: bool) -> Iterator[None]:  # noqa: ANN401 - the llama_cpp module
    """Models loaded inside use llama.cpp's extra buffer types (weight repacking, AMX) only if ``extra_buffers``.

    On CPUs with AMX (Intel Xeon 4th generation and later, ``GGML_NATIVE`` builds), a Q8_0 or Q4_1 model in the AMX
    buffer crashes the process at its first product (``ggml_backend_amx_mul_mat``, llama.cpp issue #20824; seen
    here with llama-cpp-python 0.3.36); F16 and BF16 never use that buffer. ``Llama`` takes no such argument, so
    its default parameters are replaced while it loads.
    """
    low = llama_cpp.llama_cpp
    default = low.llama_model_default_params
    if extra_buffers:
        yield
        return

    def params() -> Any:  # noqa: ANN401 - llama_model_params
        out = default()
        out.use_extra_bufts = False
        return out

    with _LOADING:
        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = default


class LlamaCppGenerator:
    """A chat LLM run by llama.cpp in this process; implements ``rag.types.Generator``.

    Example:
        >>> gen = LlamaCppGenerator(GenerationConfig(backend="llamacpp", max_new_tokens=16))
        >>> "Paris" in gen.generate(gen.render([{"role": "user", "content": "What is the capital of France?"}]))
        True
    """

    def __init__(self, config: GenerationConfig, adapter: str | None = None) -> None:
        import_llama_cpp()  # fail at construction, with the install command, not at the first question
        self.config = config
        self.model_id = config.model
        self.adapter_path = adapter if adapter is not None else config.adapter
        self.adapter_id = Path(self.adapter_path).name if self.adapter_path else None
        self.last_stats: dict[str, float] = {}

    # ---- loading --------------------------------------------------------------------------------------------

    @cached_property
    def source_gguf(self) -> Path:
        offline_env(self.config.allow_downloads)
        where = resolve_local(self.config.model, BUNDLED_LLMS, self.config.allow_downloads)
        if not where.endswith(".gguf"):
            raise ModelLoadError(f"the llamacpp backend needs a .gguf model file; generation.model gives {where}")
        return Path(where)

    @cached_property
    def llm(self) -> Any:  # noqa: ANN401 - llama_cpp.Llama
        llama_cpp = import_llama_cpp()
        cfg = self.config
        path = retyped_gguf(self.source_gguf, cfg.gguf_type, cfg.cache_dir, cfg.threads)
        lora = str(gguf_lora(self.adapter_path, self.source_gguf)) if self.adapter_path else None
        cores = os.cpu_count() or 1
        # decoding one token is memory-bound: extra threads mostly wait at barriers; prefill uses every core
        threads, batch_threads = (cfg.threads, cfg.threads) if cfg.threads else (max(cores // 2, 1), cores)
        try:
            with model_params(llama_cpp, extra_buffers=not amx_int8(llama_cpp)):
                return llama_cpp.Llama(
                    model_path=str(path), n_ctx=cfg.context_window or MAX_CONTEXT, n_batch=cfg.n_batch,
                    n_ubatch=cfg.n_batch, n_threads=threads, n_threads_batch=batch_threads, seed=cfg.seed,
                    flash_attn=cfg.flash_attn, lora_path=lora, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"llama.cpp cannot load {path} (adapter {lora}): {exc}") from exc

    def warm_up(self) -> None:
        """Load now rather than at the first question (the first load re-types the bundled GGUF to ``gguf_type``)."""
        self.llm  # noqa: B018

    @cached_property
    def _formatter(self) -> Any:  # noqa: ANN401 - llama_cpp.llama_chat_format.Jinja2ChatFormatter
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{self.source_gguf} has no chat template (tokenizer.chat_template)")
        piece = self._piece
        return Jinja2ChatFormatter(template, eos_token=piece(self.llm.token_eos()), bos_token=piece(self.llm.token_bos()))

    def _piece(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    @cached_property
    def _vocab(self) -> Any:  # noqa: ANN401 - llama_vocab pointer
        return import_llama_cpp().llama_model_get_vocab(self.llm.model)

    # ---- Generator protocol ---------------------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        return self.config.context_window or min(int(self.llm.n_ctx()), MAX_CONTEXT)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it (``<|im_start|>``) are parsed as such."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """Render chat messages with the GGUF's own template, ending where the assistant starts to answer."""
        return self._formatter(messages=[dict(m) for m in messages]).prompt

    def generate(self, prompt: str, **overrides: Any) -> str:
        return "".join(self.stream(prompt, **overrides))

    def stream(self, prompt: str, **overrides: Any) -> Iterator[str]:
        """Yield the answer's text as it is generated; stops at end-of-generation tokens and ``stop`` strings."""
        max_new, temperature, top_p, stops = self._settings(overrides)
        self.llm.set_seed(self.config.seed)  # generate() builds a fresh sampler from it: no state left between calls
        ids = self.tokenize(prompt)
        self._keep_cache(ids, sampled=temperature > 0)
        start = time.perf_counter()
        stats = {"prompt_tokens": len(ids), "completion_tokens": 0, "first_token_s": 0.0, "total_s": 0.0}
        self.last_stats = stats
        out, sent = bytearray(), 0
        tokens = self.llm.generate(ids, temp=temperature, top_p=top_p, top_k=0, min_p=0.0, repeat_penalty=1.0)
        for token in tokens:
            if not stats["completion_tokens"]:
                stats["first_token_s"] = time.perf_counter() - start
            if self._is_end(token):
                break
            stats["completion_tokens"] += 1
            out += self.llm.detokenize([token])
            text = out.decode("utf-8", "ignore")  # a half multi-byte character waits for its rest
            cut = _stop_at(text, stops)
            if cut is not None or stats["completion_tokens"] >= max_new:
                text = text if cut is None else text[:cut]
                if len(text) > sent:
                    yield text[sent:]
                break
            if len(text) > sent and not _may_start_stop(text, stops):
                yield text[sent:]
                sent = len(text)
            stats["total_s"] = time.perf_counter() - start
        else:
            text = out.decode("utf-8", "ignore")
            if len(text) > sent:
                yield text[sent:]
        stats["total_s"] = time.perf_counter() - start

    def _keep_cache(self, ids: Sequence[int], sampled: bool) -> None:
        """Keep only the cached prompt prefix that cannot change this call's logits.

        llama-cpp-python reuses the KV cache of the longest prefix this prompt shares with the last one and evaluates
        the rest; when the whole prompt is cached it re-evaluates the last token alone. A one-token batch takes
        llama.cpp's matrix-vector kernels, not the batched ones that evaluated the prompt the first time, and they
        round differently (F16 weights on AVX512: up to 0.05 in a logit), so the "same" call saw other logits and a
        seeded sample, or a greedy near-tie, changed. A sampled call therefore evaluates its whole prompt afresh (the
        same batches every time, so a seed repeats whatever was asked before); a greedy call keeps the cache but
        re-evaluates at least two tokens, which go through the batched kernels like the first evaluation did.
        """
        llm = self.llm
        if sampled:
            llm.reset()
            return
        cached = llm.input_ids[: llm.n_tokens]
        common = next((i for i, (a, b) in enumerate(zip(cached, ids)) if a != b), min(len(cached), len(ids)))
        if common >= len(ids) - 1:
            llm.n_tokens = max(len(ids) - 2, 0)

    def generate_batch(self, prompts: Sequence[str], **overrides: Any) -> list[str]:
        """One prompt after another (llama.cpp reuses the KV cache of a shared prompt prefix)."""
        return [self.generate(p, **overrides) for p in prompts]

    # ---- scoring --------------------------------------------------------------------------------------------

    def loglikelihood(self, prompt: str, continuation: str) -> float:
        """Sum of the log-probabilities of ``continuation``'s tokens right after the rendered ``prompt``."""
        cont = self.tokenize(continuation)
        if not cont:
            raise ValueError(f"continuation has no tokens: {continuation!r}")
        self._eval_prompt(prompt)
        return self._score(cont)

    def choose(self, prompt: str, options: Sequence[str]) -> tuple[str, dict[str, float]]:
        """The option the model finds most likely after ``prompt``; the prompt is evaluated once."""
        if not options:
            raise ValueError("choose needs at least one option; got none")
        n_prompt = self._eval_prompt(prompt)
        scores = {}
        for option in options:
            ids = self.tokenize(option)
            if not ids:
                raise ValueError(f"option has no tokens: {option!r}")
            self.llm.n_tokens = n_prompt  # rewind: eval() drops the KV cache past n_tokens
            scores[option] = self._score(ids)
        return max(scores, key=scores.__getitem__), scores

    def _eval_prompt(self, prompt: str) -> int:
        ids = self.tokenize(prompt)
        self.llm.reset()
        self.llm.eval(ids)
        self._first = self._logprobs()
        return len(ids)

    def _score(self, ids: list[int]) -> float:
        total, logprobs = 0.0, self._first
        for i, token in enumerate(ids):
            total += float(logprobs[token])
            if i + 1 < len(ids):
                self.llm.eval([token])
                logprobs = self._logprobs()
        return total

    def _logprobs(self) -> np.ndarray:
        llama_cpp = import_llama_cpp()
        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).astype(np.float64)
        return logits - (np.log(np.exp(logits - logits.max()).sum()) + logits.max())

    # ---- helpers --------------------------------------------------------------------------------------------

    def _settings(self, overrides: Mapping[str, Any]) -> tuple[int, float, float, tuple[str, ...]]:
        unknown = set(overrides) - OVERRIDES
        if unknown:
            raise ValueError(f"unknown generation override(s): {sorted(unknown)}")
        max_new = int(overrides.get("max_new_tokens", self.config.max_new_tokens))
        temperature = float(overrides.get("temperature", self.config.temperature))
        top_p = float(overrides.get("top_p", self.config.top_p))
        if max_new <= 0 or temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(f"need max_new_tokens > 0, temperature >= 0, 0 < top_p <= 1; got {max_new}, {temperature}, {top_p}")
        return max_new, temperature, top_p, tuple(s for s in overrides.get("stop") or () if s)

    def _is_end(self, token: int) -> bool:
        return bool(import_llama_cpp().llama_vocab_is_eog(self._vocab, token))


def _stop_at(text: str, stops: Sequence[str]) -> int | None:
    """Where the first stop string starts in ``text``, if any."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _may_start_stop(text: str, stops: Sequence[str]) -> bool:
    """True when ``text`` ends with the beginning of a stop string (hold it back until it is decided)."""
    return any(text.endswith(s[:n]) for s in stops for n in range(1, len(s)))
