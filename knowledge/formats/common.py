"""What every loader shares: the ``Document`` builder, the load result and short titles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.types import Block, Document

TITLE_MAX = 120
# the text the loaders make of a file: raised when one reads files differently (2: a code block ends its paragraph),
# so that the next ingest reads unchanged files again (their passages whose text did not change keep their vectors)
LOADER_VERSION = 2


@dataclass(frozen=True)
class LoadResult:
    """Documents of one file, and warnings about parts of it that were skipped (or that it held no text)."""

    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def document(source: str, title: str, blocks: list[Block], fmt: str, doc_id: str | None = None,
             meta: dict[str, Any] | None = None) -> Document:
    """A ``Document`` of the non-empty ``blocks``; ``source`` is the file's display path."""
    metadata = {**(meta or {}), "format": fmt}
    return Document(doc_id or source, source, title, tuple(b for b in blocks if b.text.strip()), metadata)


def short(line: str) -> str | None:
    """``line`` stripped when it is short enough to be a title, else None."""
    line = line.strip()
    return line if 0 < len(line) <= TITLE_MAX else None
