"""PDF files: one block per page (page numbers kept as metadata), text by pypdf."""

from __future__ import annotations

import io
import logging

from knowledge.formats.common import document, short
from rag.errors import SourceError
from rag.types import Block, Document


def load_pdf(source: str, stem: str, data: bytes) -> Document:
    """Raises ``SourceError`` for a broken or encrypted PDF; a PDF without text gives a document without blocks."""
    from pypdf import PdfReader  # noqa: PLC0415

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf logs every recoverable glitch
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{source}: PDF is encrypted (password protected)")
        blocks = [Block(page.extract_text() or "", page=number) for number, page in enumerate(reader.pages, 1)]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for broken files
        raise SourceError(f"{source}: broken PDF: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return document(source, short(str(info_title)) or stem, blocks, "pdf")
