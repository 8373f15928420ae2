"""Typed configuration: ``config.toml`` -> pydantic models, one table per stage.

Every setting has a default, so an empty file (or none) is a valid configuration. Unknown keys and bad values are
``ConfigError`` naming the key, the value and the file. CLI flags override the file via ``Settings.override``.
The tables are defined where they are used: the query path's in ``rag.config``, the knowledge base's (and
``KBSettings``) in ``knowledge.config``, the jobs' (``[eval]``, ``[serve]``) here.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field

from knowledge.config import KBSettings
from rag.config import AnswerConfig, GenerationConfig, PromptConfig, Section, validate
from rag.errors import ConfigError

__all__ = ["EvalConfig", "ServeConfig", "Settings", "load_settings"]


class EvalConfig(Section):
    runs_dir: str = "runs"
    batch_size: int = Field(8, gt=0)
    seed: int = 0
    k_values: list[int] = Field(default_factory=lambda: [1, 3, 5, 10, 20, 100])


class ServeConfig(Section):
    host: str = Field("127.0.0.1", description="address `rag serve` binds; anything else exposes the API")
    port: int = Field(8000, ge=0, le=65535)
    api_key: str = Field("", description="required on write endpoints when set (or env RAG_API_KEY)")
    ingest_roots: list[str] = Field(default_factory=list, description="server folders POST /v1/ingest may read")
    upload_dir: str = Field("", description="where uploaded files are kept; '' = <kb>/uploads")
    max_request_bytes: int = Field(20_000_000, gt=0, description="larger request bodies are refused (413)")
    max_question_chars: int = Field(4000, gt=0)
    ray_address: str = Field("", description="Ray cluster for `--engine ray` ('' = start a local one; 'auto')")


class Settings(KBSettings):
    """The whole configuration: the knowledge base's tables, then the query path's and the jobs'."""

    prompt: PromptConfig = PromptConfig()
    generation: GenerationConfig = GenerationConfig()
    answer: AnswerConfig = AnswerConfig()
    eval: EvalConfig = EvalConfig()
    serve: ServeConfig = ServeConfig()


def _validate(data: dict[str, Any], origin: str) -> Settings:
    return validate(Settings, data, origin)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read ``path`` (TOML). ``None`` means defaults; a missing named file is an error."""
    if path is None:
        return Settings()
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
        # JSON: the exact settings a process hands to a child it starts (e.g. a background distillation round)
        data = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid {'JSON' if file.suffix == '.json' else 'TOML'}: {exc}") from None
    return _validate(data, str(file))
