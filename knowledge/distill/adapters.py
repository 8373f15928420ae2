"""Versioned LoRA adapters of a knowledge base: ``<kb>/adapters/<id>/`` plus an atomic ``active.json`` pointer.

Layout::

    <kb>/adapters/<id>/adapter_config.json, adapter_model.safetensors   (peft)
    <kb>/adapters/<id>/manifest.json    id, base model, passages covered with confidence, data hash, data
                                        kinds, settings, metrics, decision, created time, parent adapter
    <kb>/adapters/<id>/train.jsonl      the training data (replayed by later rounds)
    <kb>/adapters/<id>/answers.json     its greedy gate answers by prompt (the next round's "before")
    <kb>/adapters/base-answers.json     the base model's gate answers by prompt (round-1 "before", replay anchors)
    <kb>/adapters/.tmp-<id>/            a round in progress; never read, removed on failure
    <kb>/adapters/active.json           {"active": id | null, "history": [earlier ids]}

A round trains into a temp folder; promotion renames it to its final name and then rewrites ``active.json`` (both
atomic), so a killed round never leaves a half-written adapter active.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from knowledge.files import write_json_atomic
from rag.errors import KnowledgeBaseError

MANIFEST = "manifest.json"
POINTER = "active.json"
ANSWERS = "answers.json"
TMP_PREFIX = ".tmp-"


def new_adapter_id() -> str:
    """Sortable, unique id: UTC time then a random suffix, e.g. ``20250101-120000-3f2a``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:4]


class AdapterRegistry:
    """The adapters of one knowledge base and which one is active.

    Example:
        >>> reg = AdapterRegistry("kb")
        >>> reg.active_path() is None      # no round promoted yet: the base model answers
        True
    """

    def __init__(self, kb_root: str | Path) -> None:
        path = Path(kb_root).expanduser().resolve()
        # the KB folder is expected; its ``adapters/`` sub-folder itself is accepted too
        is_adapters = path.name == "adapters" and (path.parent / "manifest.json").is_file()
        self.root = path if is_adapters else path / "adapters"

    # ---- reading ------------------------------------------------------------------------------------------------

    def _pointer(self) -> dict[str, Any]:
        path = self.root / POINTER
        if not path.is_file():
            return {"active": None, "history": []}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise KnowledgeBaseError(f"{path} is damaged: {exc}") from None

    def manifest(self, adapter_id: str) -> dict[str, Any]:
        """The manifest of a finished adapter; ``ValueError`` if there is no such adapter."""
        path = self.root / adapter_id / MANIFEST
        if adapter_id.startswith(".") or "/" in adapter_id or not path.is_file():
            raise ValueError(f"no adapter with id {adapter_id!r} in {self.root}")
        return json.loads(path.read_text(encoding="utf-8"))

    def list(self) -> list[dict[str, Any]]:
        """Manifests of every finished adapter, oldest first, each with ``active`` set."""
        if not self.root.is_dir():
            return []
        active = self._pointer().get("active")
        out = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (folder / MANIFEST).is_file():
                out.append({**self.manifest(folder.name), "active": folder.name == active})
        return out

    def active(self) -> dict[str, Any] | None:
        """The manifest of the active adapter, or ``None`` when the base model answers."""
        adapter_id = self._pointer().get("active")
        return self.manifest(adapter_id) if adapter_id else None

    def active_path(self) -> Path | None:
        """Folder of the active adapter (what ``HFGenerator(adapter=...)`` loads), or ``None``."""
        adapter_id = self._pointer().get("active")
        return self.root / adapter_id if adapter_id else None

    def covered(self) -> dict[str, float]:
        """Passage id -> confidence for the passages the active adapter was trained on."""
        manifest = self.active()
        return {} if manifest is None else {k: float(v) for k, v in manifest.get("passages", {}).items()}

    def covers(self, passage_ids: list[str] | tuple[str, ...], min_confidence: float) -> bool:
        """True when every passage is in the active adapter with at least ``min_confidence``.

        The QA pipeline's ``generation.mode = "auto"`` answers closed-book when this holds for the passages it
        would retrieve. A changed passage has a new id (ids are content hashes), so it is never covered.
        """
        if not passage_ids:
            return False
        covered = self.covered()
        return all(covered.get(pid, -1.0) >= min_confidence for pid in passage_ids)

    def answers(self, adapter: Path | None, key: str) -> dict[str, str]:
        """Gate answers by prompt that ``adapter`` (None: the base model) gave under settings ``key``; {} if none.

        Greedy answers of the same weights to the same prompts do not change, so a round reuses what the model
        it compares against already answered instead of generating it again.
        """
        path = adapter / ANSWERS if adapter is not None else self.root / f"base-{ANSWERS}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):  # absent or damaged: answer afresh
            return {}
        answers = data.get("answers") if isinstance(data, dict) and data.get("key") == key else None
        return {str(k): str(v) for k, v in answers.items()} if isinstance(answers, dict) else {}

    def save_answers(self, folder: Path | None, key: str, answers: dict[str, str]) -> None:
        """Record gate answers of the adapter in ``folder`` (None: the base model's, merged with earlier ones)."""
        if folder is None:
            self.root.mkdir(parents=True, exist_ok=True)
            answers = self.answers(None, key) | answers
        path = folder / ANSWERS if folder is not None else self.root / f"base-{ANSWERS}"
        write_json_atomic(path, {"key": key, "answers": answers})

    # ---- writing ------------------------------------------------------------------------------------------------

    def new_temp(self, adapter_id: str) -> Path:
        """A fresh temp folder for a round; the active adapter is never touched while it fills."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{TMP_PREFIX}{adapter_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        return tmp

    def clean_temps(self) -> int:
        """Remove temp folders left by killed rounds; returns how many. Call only while holding the round lock."""
        if not self.root.is_dir():
            return 0
        stale = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(TMP_PREFIX)]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)

    def finish(self, tmp: Path, manifest: dict[str, Any], activate: bool) -> Path:
        """Write the manifest, rename ``tmp`` to ``<id>`` and, with ``activate``, make it the active adapter."""
        adapter_id = manifest["id"]
        write_json_atomic(tmp / MANIFEST, manifest)
        _gguf_copy(tmp, manifest)
        final = self.root / adapter_id
        if final.exists():
            raise KnowledgeBaseError(f"adapter {adapter_id} already exists in {self.root}")
        os.replace(tmp, final)
        if activate:
            self.activate(adapter_id)
        return final

    def activate(self, adapter_id: str) -> None:
        """Make ``adapter_id`` active; the previous one goes on the history for ``rollback``."""
        self.manifest(adapter_id)  # raises on an unknown id
        pointer = self._pointer()
        if pointer.get("active") == adapter_id:
            return
        history = list(pointer.get("history", []))
        if pointer.get("active"):
            history.append(pointer["active"])
        write_json_atomic(self.root / POINTER, {"active": adapter_id, "history": history, "updated": time.time()})

    def rollback(self) -> str | None:
        """Re-activate the previous adapter (or the base model when there is none); returns the new active id."""
        pointer = self._pointer()
        history = list(pointer.get("history", []))
        if not pointer.get("active") and not history:
            raise ValueError(f"nothing to roll back in {self.root}: the base model is already active")
        previous = history.pop() if history else None
        while previous is not None and not (self.root / previous / MANIFEST).is_file():
            previous = history.pop() if history else None  # skip adapters deleted by hand
        write_json_atomic(self.root / POINTER, {"active": previous, "history": history, "updated": time.time()})
        return previous


def learnt_passages(folder: str | Path) -> list[str] | None:
    """The passage ids the adapter in ``folder`` learnt (its manifest's ``passages``, earlier rounds' included);
    None when it has no readable manifest (an adapter trained elsewhere)."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    passages = manifest.get("passages") if isinstance(manifest, dict) else None
    return [str(p) for p in passages] if isinstance(passages, (dict, list)) else None


def _gguf_copy(folder: Path, manifest: dict[str, Any]) -> None:
    """Convert the adapter to a GGUF LoRA now, for the llama.cpp backend (which otherwise converts at first load)."""
    from rag.errors import ModelLoadError
    from rag.generation.lora_gguf import convert_for_model

    if manifest.get("base_model") and (folder / "adapter_model.safetensors").is_file():
        try:
            convert_for_model(folder, manifest["base_model"])
        except ModelLoadError:  # the transformers backend does not need it; llama.cpp retries and reports at load
            pass
