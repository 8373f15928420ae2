"""GGUF files for llama.cpp: the bundled model re-typed once to ``gguf_type`` (cached, atomic, with a progress bar)
and a peft adapter's LoRA as GGUF; ``gguf_type = "auto"`` picks the type by the CPU.

Example:
    >>> chosen_gguf_type("Q8_0")
    'Q8_0'
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import ModelLoadError
from rag.generation.lora_gguf import convert_peft_to_gguf, gguf_adapter_path
from rag.models import cpu_has_fast_bf16, derived_path

INSTALL_HINT = "pip install -e '.[llamacpp]'  (builds llama-cpp-python from source; a few minutes)"
FTYPES = {"F32": 0, "F16": 1, "Q4_1": 3, "Q8_0": 7, "BF16": 32}  # llama_ftype values (llama.h)
_TENSOR = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")  # the quantizer's log line per tensor: "[ 12/ 272] blk.0.attn_q..."


def import_llama_cpp() -> Any:  # noqa: ANN401 - the llama_cpp module
    """``llama_cpp``, or one clear error with the install command."""
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError(f"generation.backend = 'llamacpp' needs llama-cpp-python: {INSTALL_HINT}") from None
    return llama_cpp


def chosen_gguf_type(setting: str) -> str:
    """``auto``: BF16 where the CPU has native bf16 (AVX512-BF16/AMX: its prefill is the fastest exact type there,
    ``bench/answer.py --sweep``), else F16 (on AVX2, F16 prefills fastest and keeps transformers' greedy answers)."""
    if setting != "auto":
        return setting
    return "BF16" if cpu_has_fast_bf16() else "F16"


def retyped_gguf(source: Path, gguf_type: str, cache_dir: str | Path, threads: int = 0) -> Path:
    """``source`` re-typed to ``gguf_type`` with llama.cpp's quantizer, written once (atomically) and cached."""
    gguf_type = chosen_gguf_type(gguf_type)
    if gguf_type == "source":
        return source
    target = derived_path(cache_dir, "gguf", source.stem, [source], f".{gguf_type}.gguf")
    if target.is_file():
        return target
    llama_cpp = import_llama_cpp()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[gguf_type]
    params.allow_requantize = True  # the bundled file is already quantized
    params.nthread = threads
    try:
        with _tensor_progress(f"First use: re-typing {source.name} to {gguf_type} for llama.cpp, once"):
            failed = llama_cpp.llama_model_quantize(str(source).encode(), tmp.encode(), ctypes.byref(params))
        if failed:
            raise ModelLoadError(f"llama.cpp could not re-type {source} to {gguf_type}")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


@contextlib.contextmanager
def _tensor_progress(description: str) -> Iterator[None]:
    """One progress bar on stderr fed by the quantizer's "[ 12/ 272] blk.0..." log lines, instead of the lines."""
    from llama_cpp._logger import llama_log_callback  # llama-cpp-python's own, put back afterwards
    from tqdm.auto import tqdm

    llama_cpp = import_llama_cpp()
    with tqdm(desc=description, unit="tensor", file=sys.stderr) as bar:

        def on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            match = _TENSOR.search(text)
            if match:
                bar.total = int(match.group(2))
                bar.update(int(match.group(1)) - bar.n)
            elif level == 3:  # GGML_LOG_LEVEL_ERROR: the user needs to see why it failed
                bar.write(text.decode("utf-8", "replace").rstrip(), file=sys.stderr)

        callback = llama_cpp.llama_log_callback(on_log)  # referenced until put back: C keeps only the pointer
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        try:
            yield
        finally:
            llama_cpp.llama_log_set(llama_log_callback, ctypes.c_void_p(0))


def gguf_lora(adapter: str | Path, base_gguf: Path) -> Path:
    """The GGUF LoRA of a peft adapter folder (converted now if it has none yet), or a ``.gguf`` given directly."""
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    target = gguf_adapter_path(path)
    if not target.is_file():
        convert_peft_to_gguf(path, base_gguf)
    return target
