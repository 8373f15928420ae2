"""JSON Lines: one document per record (BEIR ``_id``/``title``/``text`` or ``id``/``title``/``text``/``metadata``).

A bad record fails its own line only: the line is skipped with a warning naming its number, the others load.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from knowledge.formats.common import LoadResult, document
from rag.errors import SourceError
from rag.types import Block, Document

MAX_ID_CHARS = 256
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # "\ud800": valid JSON, but not storable text


def load_jsonl(source: str, text: str, max_line_chars: int) -> LoadResult:
    """Every usable record; raises ``SourceError`` only when no line at all is usable."""
    docs: list[Document] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = _record(source, line, number, warnings, max_line_chars)
        except ValueError as exc:
            warnings.append(f"line {number}: {exc} — skipped")
            continue
        if doc.doc_id in seen:
            warnings.append(f"line {number}: duplicate id '{doc.doc_id.rsplit('#', 1)[1]}' — skipped")
            continue
        seen.add(doc.doc_id)
        docs.append(doc)
    if not docs:
        raise SourceError(f"{source}: no usable records ({warnings[0] if warnings else 'empty'})")
    return LoadResult(docs, warnings)


def _record(source: str, line: str, number: int, warnings: list[str], max_line_chars: int) -> Document:
    if len(line) > max_line_chars:
        raise ValueError(f"{len(line):,} characters, more than ingest.max_line_chars = {max_line_chars:,}")
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, 100,000 nested brackets
        raise ValueError(f"invalid JSON ({str(exc).splitlines()[0][:80]})") from None
    if _SURROGATE.search(line) and not _encodable(row):
        raise ValueError("invalid Unicode (a lone surrogate escape such as \\ud800)")
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    body = row.get("text")
    if not isinstance(body, str) or not body.strip():
        raise ValueError("record has no 'text'")
    record_id = _record_id(row.get("_id", row.get("id")), number)
    title = row.get("title") if isinstance(row.get("title"), str) else ""
    meta = _user_metadata(row.get("metadata"), number, warnings)
    return document(source, title.strip(), [Block(body)], "jsonl", f"{source}#{record_id}", meta)


def _encodable(row: Any) -> bool:  # noqa: ANN401
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _record_id(value: Any, number: int) -> str:  # noqa: ANN401 - any JSON value
    if value in (None, ""):
        return f"line-{number}"
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"id must be a string or a number, got {type(value).__name__}")
    record_id = str(value)
    if len(record_id) > MAX_ID_CHARS:
        raise ValueError(f"id has {len(record_id):,} characters, more than {MAX_ID_CHARS}")
    return record_id


def _user_metadata(meta: Any, number: int, warnings: list[str]) -> dict[str, Any]:  # noqa: ANN401
    """Keep the user's metadata; ``tags`` becomes a list of strings and ``date`` must be an ISO date."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        warnings.append(f"line {number}: 'metadata' is not an object — ignored")
        return {}
    meta = dict(meta)
    tags = meta.get("tags")
    if isinstance(tags, str):
        meta["tags"] = [tags]
    elif isinstance(tags, list):
        meta["tags"] = [str(t) for t in tags]
    elif tags is not None:
        warnings.append(f"line {number}: 'tags' is not a list — ignored")
        del meta["tags"]
    if "date" in meta:
        try:
            date.fromisoformat(str(meta["date"])[:10])
        except ValueError:
            warnings.append(f"line {number}: date {meta['date']!r} is not an ISO date — ignored")
            del meta["date"]
    return meta
