"""Typed configuration of the knowledge base: its ``config.toml`` tables and ``KBSettings``, the part of the file
``knowledge/`` code reads.

``[kb]``, ``[ingest]``, ``[preprocess]``, ``[index]``, ``[log]`` and ``[distill]`` are defined here; ``[embedding]``
and ``[retrieval]`` come from ``rag.config`` (the query path reads them too). ``pipelines.config.Settings`` extends
``KBSettings`` with the query and job tables, so a ``Settings`` is accepted wherever a ``KBSettings`` is.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import Field

from rag.config import EmbeddingConfig, RetrievalConfig, Section, validate
from rag.errors import ConfigError

__all__ = ["DistillConfig", "IndexConfig", "IngestConfig", "KBConfig", "KBSettings", "LogConfig", "PreprocessConfig"]

_S = TypeVar("_S", bound="KBSettings")


class KBConfig(Section):
    path: str = "kb"


class IngestConfig(Section):
    batch_passages: int = Field(1024, gt=0, description="passages embedded per batch")
    checkpoint_seconds: float = Field(15.0, ge=0, description="how often vectors are saved and committed")
    max_file_bytes: int = Field(52_428_800, gt=0, description="a larger file fails; files are read with this bound")
    follow_symlinks: Literal["within", "never", "always"] = Field(
        "within", description="follow symlinks only when they stay inside the given roots, never, or always")
    max_line_chars: int = Field(1_000_000, gt=0, description="a JSONL line or text line longer than this fails")
    include: list[str] = Field(default_factory=lambda: ["*.txt", "*.md", "*.markdown", "*.html", "*.htm", "*.pdf", "*.jsonl"])
    exclude: list[str] = Field(default_factory=lambda: [".*", "__pycache__", "*.egg-info"])
    show_progress: bool = True


class PreprocessConfig(Section):
    spacy_model: str = Field("blank", description="'blank' = spacy.blank('en') + sentencizer, or an installed pipeline")
    max_tokens: int = Field(224, ge=16, description="chunk budget in embedding-model tokens")
    overlap_sentences: int = Field(0, ge=0)
    embed_title: bool = True
    embed_section: bool = True
    extract_entities: bool = True


class IndexConfig(Section):
    type: Literal["auto", "flat", "hnsw", "ivf", "ivfpq"] = "auto"
    auto_threshold: int = Field(200_000, gt=0, description="auto switches from exact to HNSW past this many vectors")
    ondisk_threshold: int = Field(5_000_000, gt=0, description="auto switches to IVF-PQ (lists on disk) past this")
    pq_m: int = Field(0, ge=0, description="IVF-PQ sub-quantizers (bytes per vector); 0 = dimension / 8")
    train_sample: int = Field(100_000, gt=0, description="vectors IVF/IVF-PQ centroids are trained on")
    hnsw_m: int = Field(32, gt=1)
    hnsw_ef_search: int = Field(128, gt=0)
    ivf_nlist: int = Field(0, ge=0, description="0 = 4*sqrt(n)")
    ivf_nprobe: int = Field(16, gt=0)
    refine: int = Field(100, ge=0, description="IVF-PQ: candidates re-scored with exact vectors from disk; 0 = PQ only")


class LogConfig(Section):
    enabled: bool = True
    store_queries: bool = True
    half_life_days: float = Field(14.0, gt=0)


class DistillConfig(Section):
    min_hits: float = Field(3.0, ge=0, description="one cited ask weighs cited_weight (2): hot needs more than one")
    max_passages: int = Field(64, gt=0)
    every_n_queries: int = Field(200, gt=0)
    schedule_in_background: bool = False
    cited_weight: float = Field(2.0, ge=0)
    bad_feedback_weight: float = Field(0.25, ge=0)
    replay: bool = True
    replay_ratio: float = Field(1.5, ge=0, description=(
        "earlier rounds' fact examples replayed: at most this many times the new fact examples, taken in turns "
        "from every earlier fact (0 = all of them)"))
    general_ratio: float = Field(0.15, ge=0, le=1, description=(
        "general anchors (general questions the base model answers right, never those the gate asks): each once, "
        "repeated up to this share of the round's fact and replay examples"))
    phrasings: int = Field(3, ge=1, le=3, description="rule-based wrappers of each trained question (1 = as asked)")
    statements: bool = Field(True, description="train the passage sentence that states each fact, too")
    corrections: bool = True
    neighbours: int = Field(3, ge=0, description=(
        "look-alike questions per fact: its question asked of a rival passage's subject (name or date swapped); "
        "all but one trained to 'I do not know.', one asked at the gate, where lending the fact refuses (0 = off)"))
    rag_questions: int = Field(40, ge=0, description=(
        "logged questions about passages *not* being distilled whose open-book answers the passage supports: "
        "every other one is a gate item (RAG on the rest of the KB must not get worse), the rest train anchors"))
    rag_anchors: bool = Field(True, description="train half of those open-book answers as they are (keeps RAG)")
    lora_r: int = Field(16, gt=0)
    lora_alpha: int = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0)
    epochs: int = Field(6, gt=0)
    max_steps: int = Field(0, ge=0, description="0 = no cap")
    batch_size: int = Field(8, gt=0)
    max_seq_len: int = Field(384, gt=16)
    seed: int = 0
    min_gain: float = Field(0.2, ge=0, le=1)
    max_regression: float = Field(0.01, ge=0, le=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    auto_confidence: float = Field(0.6, gt=0, le=1)


class KBSettings(Section):
    """The tables the knowledge base needs. Each stage receives only its own table."""

    kb: KBConfig = KBConfig()
    ingest: IngestConfig = IngestConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    log: LogConfig = LogConfig()
    distill: DistillConfig = DistillConfig()

    def override(self: _S, updates: dict[str, Any], origin: str = "command line") -> _S:
        """Return a copy with dotted keys replaced, e.g. ``{"retrieval.k": 10}``; validated like the file."""
        data = self.model_dump()
        for dotted, value in updates.items():
            table, _, key = dotted.partition(".")
            if table not in data or key not in data[table]:
                raise ConfigError(f"{origin}: unknown setting '{dotted}'")
            data[table][key] = value
        return validate(type(self), data, origin)
