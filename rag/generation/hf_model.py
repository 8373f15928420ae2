"""The base LLM on disk for transformers: a GGUF dequantised once into a safetensors cache, and loading it.

The bundled SmolLM2 ships as a GGUF file. Dequantising it takes about half a minute, so the first load writes a plain
safetensors copy under ``GenerationConfig.cache_dir`` (saying so on stderr) and later loads read that. Used by the
generator (``rag.generation.generate``) and the distillation trainer.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rag.config import GenerationConfig
from rag.errors import ModelLoadError
from rag.models import BUNDLED_LLMS, derived_path, offline_env, resolve_local


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gguf_cache_dir(config: GenerationConfig, gguf: Path) -> Path:
    """Cache folder of the safetensors copy of ``gguf``, keyed by model id and the file's size and mtime."""
    return derived_path(config.cache_dir, "llm", config.model, [gguf])


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` once into a clean safetensors model folder, written atomically.

    It takes about half a minute, so it says so: one progress line on stderr (transformers' own bars are hidden).
    """
    from tqdm.auto import tqdm

    steps = iter(["reading the tokenizer", "building the model", "writing safetensors"])
    with tqdm(total=4, desc=f"First use: converting {gguf.name} for transformers, once", file=sys.stderr,
              bar_format="{desc}: step {n}/{total}{postfix} [{elapsed}]", postfix="reading the weights") as bar, \
            contextlib.redirect_stderr(io.StringIO()):

        def done() -> None:
            bar.set_postfix_str(next(steps, "done"), refresh=False)
            bar.update()

        _write_safetensors(gguf, target, done)


def _write_safetensors(gguf: Path, target: Path, done: Callable[[], None]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    done()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    done()
    # a GGUF-loaded model refuses save_pretrained; rebuild a plain one from its config and weights
    cfg = copy.deepcopy(quantised.config)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    clean = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    clean.load_state_dict(quantised.state_dict())
    clean.generation_config = quantised.generation_config
    done()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        clean.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        source = {"gguf": str(gguf), "size": gguf.stat().st_size, "mtime": gguf.stat().st_mtime}
        (tmp / "source.json").write_text(json.dumps(source, indent=2), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "source.json").is_file():  # another process may have won the rename
            raise
    done()


def model_folder(config: GenerationConfig) -> str:
    """Something ``from_pretrained`` loads offline: the safetensors cache of a GGUF, a local folder or a hub id."""
    offline_env(config.allow_downloads)
    where = resolve_local(config.model, BUNDLED_LLMS, config.allow_downloads)
    if not where.endswith(".gguf"):
        return where
    gguf = Path(where)
    target = gguf_cache_dir(config, gguf)
    if not (target / "source.json").is_file():
        try:
            _convert_gguf(gguf, target)
        except Exception as exc:  # noqa: BLE001 - any conversion failure becomes one clear error
            raise ModelLoadError(f"cannot convert GGUF model {gguf}: {first_line(exc)}") from exc
    return str(target)


def load_base(config: GenerationConfig) -> tuple[Any, Any]:
    """Load the un-adapted fp32 model and its tokenizer (used by the generator and the distillation trainer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_folder(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot load LLM '{config.model}' from {folder}: {first_line(exc)}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
