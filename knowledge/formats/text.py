"""Bytes to text: byte-order marks (UTF-8, UTF-16, UTF-32), a declared charset, or strict UTF-8.

Example:
    >>> decode("notes.txt", "caf\\u00e9".encode("utf-16"))
    'café'
"""

from __future__ import annotations

import codecs
import re

from knowledge.formats.common import document, short
from rag.errors import SourceError
from rag.types import Block, Document

# longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one
_BOMS = [(codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """``(encoding, BOM length)`` when ``data`` starts with a byte-order mark."""
    return next(((enc, len(bom)) for bom, enc in _BOMS if data.startswith(bom)), None)


def decode(shown: str, data: bytes, declared: str | None = None) -> str:
    """Decode with the BOM's encoding, else ``declared`` (an HTML charset), else strict UTF-8.

    Raises ``SourceError`` naming the file for binary data (NUL bytes without a UTF-16/32 BOM) and for bytes
    that are not valid in the encoding.
    """
    bom = bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        data = data[skip:]
    else:
        if b"\x00" in data[:1_000_000]:
            raise SourceError(f"{shown}: binary file (contains NUL bytes), not text")
        encoding = _known(declared) or "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding == "utf-8" else encoding
        raise SourceError(f"{shown}: invalid {name} at byte offset {exc.start + (bom[1] if bom else 0)}") from None


def _known(encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def check_lines(shown: str, text: str, max_chars: int) -> None:
    """Refuse a text whose longest line is over ``max_chars`` (minified or binary blobs), naming the line."""
    if len(text) <= max_chars:
        return
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > max_chars:
            raise SourceError(f"{shown}: line {number} has {len(line):,} characters, more than "
                              f"ingest.max_line_chars = {max_chars:,}")


def load_txt(shown: str, stem: str, text: str) -> Document:
    """A plain-text document titled by its first line when that is short, else by the file's stem."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return document(shown, short(first) or stem, [Block(text)], "txt")


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_PROLOG_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in its first 4 KB (``<meta charset>`` or the XML prolog)."""
    head = data[:4096]
    match = _PROLOG_ENCODING.search(head) or _CHARSET.search(head)
    return match.group(1).decode("ascii") if match else None
