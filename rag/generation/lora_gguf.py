"""Convert a peft LoRA adapter (safetensors) into a GGUF LoRA that llama.cpp loads next to the base GGUF.

Follows llama.cpp's ``convert_lora_to_gguf.py`` with the ``gguf`` package: peft names map to GGUF names through
``gguf.get_tensor_name_map``; ``lora_A`` (r x in) and ``lora_B`` (out x r) are stored as is, as F32; llama.cpp
scales by ``alpha / r`` like peft. Llama-family GGUFs store q/k projections with their rows permuted for rotary
embeddings (convert_hf_to_gguf's ``LlamaModel.permute``), so ``lora_B`` of q/k (their output rows) is permuted
the same way. Only the standard LoRA is supported: DoRA, per-module ranks and ``modules_to_save`` are refused.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelLoadError

GGUF_NAME = "adapter_model.gguf"
_PEFT_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
_PERMUTED = {"attn_q": "attention.head_count", "attn_k": "attention.head_count_kv"}  # heads per permuted block


def gguf_adapter_path(adapter_dir: str | Path) -> Path:
    """Where the GGUF copy of the adapter in ``adapter_dir`` lives."""
    return Path(adapter_dir) / GGUF_NAME


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def _read_value(f: Any, vtype: int) -> Any:  # noqa: ANN401 - any GGUF metadata value
    import struct

    if vtype == 8:  # string
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n).decode("utf-8", errors="replace")
    if vtype == 9:  # array: skipped value by value (only scalars and strings are needed here)
        item, count = struct.unpack("<IQ", f.read(12))
        for _ in range(count):
            _read_value(f, item)
        return None
    fmt = _SCALARS[vtype]
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def _metadata(base_gguf: Path, wanted: set[str]) -> dict[str, Any]:
    """The ``wanted`` metadata keys of a GGUF file, reading its header only until they are all found.

    ``gguf.GGUFReader`` parses every field, the 49k-token vocabulary included, in Python: minutes on a busy CPU
    for three integers.
    """
    import struct

    found: dict[str, Any] = {}
    with open(base_gguf, "rb") as f:
        magic, _version, _tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        if magic != b"GGUF":
            raise ModelLoadError(f"{base_gguf}: not a GGUF file")
        for _ in range(n_kv):
            (n,) = struct.unpack("<Q", f.read(8))
            key = f.read(n).decode("utf-8", errors="replace")
            (vtype,) = struct.unpack("<I", f.read(4))
            value = _read_value(f, vtype)
            if key in wanted or key == "general.architecture":
                found[key] = value
                if key == "general.architecture":
                    wanted = {w.replace("{arch}", str(value)) for w in wanted}
            if wanted <= set(found):
                break
    return found


def _base_info(base_gguf: Path) -> dict[str, int | str]:
    keys = ("block_count", "attention.head_count", "attention.head_count_kv")
    meta = _metadata(base_gguf, {"general.architecture", *(f"{{arch}}.{k}" for k in keys)})
    arch = meta.get("general.architecture")
    if not arch:
        raise ModelLoadError(f"{base_gguf}: no 'general.architecture' in its metadata; cannot map a LoRA onto it")
    info: dict[str, int | str] = {"arch": arch}
    for key in keys:
        if meta.get(f"{arch}.{key}") is None:
            raise ModelLoadError(f"{base_gguf}: no '{arch}.{key}' in its metadata; cannot map a LoRA onto it")
        info[key] = int(meta[f"{arch}.{key}"])
    return info


def _alpha(config: dict, folder: Path) -> float:
    """The alpha llama.cpp needs so that ``alpha / r`` equals peft's scaling."""
    if config.get("use_dora") or config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save"):
        raise ModelLoadError(f"{folder}: DoRA, per-module ranks/alphas and modules_to_save cannot be converted to GGUF")
    r, alpha = float(config["r"]), float(config["lora_alpha"])
    return alpha * r**0.5 if config.get("use_rslora") else alpha  # rsLoRA scales by alpha / sqrt(r)


def _permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's q/k row permutation (interleaved -> half-split rotary layout), on output rows."""
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _tensors(folder: Path, info: dict[str, int | str]) -> dict[str, np.ndarray]:
    """GGUF tensor name -> float32 array, for every ``lora_A``/``lora_B`` of the adapter."""
    import gguf
    from safetensors.numpy import load_file

    arch = {name: enum for enum, name in gguf.MODEL_ARCH_NAMES.items()}.get(str(info["arch"]))
    if arch is None:
        raise ModelLoadError(f"base model architecture '{info['arch']}' is unknown to the gguf package")
    names = gguf.get_tensor_name_map(arch, int(info["block_count"]))
    out: dict[str, np.ndarray] = {}
    for key, value in load_file(str(folder / "adapter_model.safetensors")).items():
        match = _PEFT_KEY.match(key)
        target = names.get_name(match["module"] + ".weight", try_suffixes=(".weight",)) if match else None
        if target is None:
            raise ModelLoadError(f"{folder}: cannot map adapter tensor '{key}' to a GGUF tensor name")
        array = value.astype(np.float32)
        stem = target.removesuffix(".weight").split(".")[-1]
        if match["part"] == "B" and info["arch"] == "llama" and stem in _PERMUTED:
            array = _permute_rows(array, int(info[_PERMUTED[stem]]))
        out[f"{target}.lora_{match['part'].lower()}"] = np.ascontiguousarray(array)
    return out


def convert_peft_to_gguf(adapter_dir: str | Path, base_gguf: str | Path, out: str | Path | None = None) -> Path:
    """Write ``adapter_model.gguf`` (or ``out``) for the peft adapter in ``adapter_dir``; returns its path.

    Example:
        >>> convert_peft_to_gguf("kb/adapters/20250101-120000-3f2a", "SmolLM2-135M-Instruct.Q4_1.gguf").name
        'adapter_model.gguf'
    """
    import gguf

    folder, base = Path(adapter_dir), Path(base_gguf)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise ModelLoadError(f"not a peft LoRA adapter folder (adapter_config.json + adapter_model.safetensors): {folder}")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    info = _base_info(base)
    target = Path(out) if out else gguf_adapter_path(folder)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, str(info["arch"]))
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, _alpha(config, folder))
        for name, array in _tensors(folder, info).items():
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def convert_for_model(adapter_dir: str | Path, model: str, allow_downloads: bool = False) -> Path | None:
    """The GGUF LoRA of an adapter trained on ``model`` when that model is a GGUF file (bundled or local), else None.

    Called when an adapter is promoted, so the llama.cpp backend finds the GGUF copy ready.
    """
    from rag.models import BUNDLED_LLMS, resolve_local

    where = resolve_local(model, BUNDLED_LLMS, allow_downloads)
    if not where.endswith(".gguf"):
        return None
    return convert_peft_to_gguf(adapter_dir, where)
