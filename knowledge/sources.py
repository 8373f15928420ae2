"""Find source files and load them into ``Document``s: text, Markdown, HTML, PDF and JSONL.

A problem with one file never stops the others: ``discover`` reports missing paths and unsupported files,
``load`` raises ``SourceError`` (one line, naming the file) for fatal problems and returns warnings for
recoverable ones (a malformed JSONL line is skipped and reported with its line number).

Example:
    >>> from rag.config import IngestConfig
    >>> found = discover(["knowledge/sample"], IngestConfig())
    >>> docs = [d for f in found.files for d in load(f, IngestConfig()).documents]
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rag.config import IngestConfig
from rag.errors import SourceError
from rag.types import Block, Document

SUPPORTED = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf",
             ".jsonl": "jsonl"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_GLOB_TOKENS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
_TITLE_MAX = 120


@dataclass(frozen=True)
class Discovery:
    """Files found by ``discover``; ``skipped`` and ``failed`` hold ``(path, reason)`` pairs."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LoadResult:
    """Documents of one file, and warnings about parts of it that were skipped."""

    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---- discovery ----------------------------------------------------------------------------------------------------


def discover(paths: Sequence[str | Path], config: IngestConfig) -> Discovery:
    """Expand files, folders (recursively) and glob patterns (``docs/**/*.md``) into the supported files to load.

    Folders honour ``config.include``/``config.exclude`` and skip hidden entries; a file named explicitly or
    matched by a pattern only needs a supported type. Symlinked folders are followed once (loops are cut).
    Nothing here raises for a bad path: it becomes a ``failed`` entry.
    """
    found: set[Path] = set()
    skipped: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for file in _files_under(path, config, failed):
                if any(fnmatch.fnmatch(file.name, pattern) for pattern in config.include):
                    _take(file, found, skipped)
                else:
                    skipped.append((str(file), f"unsupported type '{file.suffix or file.name}'"))
        elif path.is_file():
            _take(path, found, skipped)
        elif _GLOB_CHARS.search(str(raw)):
            _glob(str(path), config, found, skipped, failed)
        elif path.is_symlink():
            failed.append((str(raw), "broken symbolic link"))
        else:
            failed.append((str(raw), "path does not exist"))
    return Discovery(sorted(found), skipped, failed)


def _take(path: Path, found: set[Path], skipped: list[tuple[str, str]]) -> None:
    if path.suffix.lower() in SUPPORTED:
        found.add(path.resolve())
    else:
        skipped.append((str(path), f"unsupported type '{path.suffix or path.name}'"))


def _glob(pattern: str, config: IngestConfig, found: set[Path], skipped: list, failed: list) -> None:
    """Walk the pattern's fixed prefix ourselves: glob.glob follows symlink loops 40 levels deep (exponentially)."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    regex = _glob_regex("/".join(parts[fixed:]))
    matched = False
    for file in _files_under(root, config, failed) if root.is_dir() else ():
        rel = file.relative_to(root).parts
        if any(regex.fullmatch("/".join(rel[:i])) for i in range(1, len(rel) + 1)):  # the file or a folder above
            matched = True
            _take(file, found, skipped)
    if not matched:
        failed.append((pattern, "no files match the pattern"))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[!?[^\]]+\])", pattern):
        if token in _GLOB_TOKENS:
            out.append(_GLOB_TOKENS[token])
        elif token.startswith("[") and token.endswith("]") and len(token) > 2:
            out.append("[^" + token[2:] if token.startswith("[!") else token)
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def _files_under(root: Path, config: IngestConfig, failed: list) -> Iterator[Path]:
    """Files below ``root``, without hidden or excluded entries; each real folder is visited once."""
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=lambda e: failed.append(
            (str(e.filename), f"cannot read folder: {e.strerror}"))):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symlink loop, or a second link to the same folder
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, config))
        for name in sorted(n for n in filenames if not _excluded(n, config)):
            path = Path(dirpath) / name
            if path.exists():
                yield path
            else:
                failed.append((str(path), "broken symbolic link"))


def _excluded(name: str, config: IngestConfig) -> bool:
    return name.startswith(".") or any(fnmatch.fnmatch(name, pattern) for pattern in config.exclude)


# ---- loading ------------------------------------------------------------------------------------------------------


def load(path: Path, config: IngestConfig) -> LoadResult:
    """Read one file into documents. Raises ``SourceError`` naming the file when it cannot be used at all."""
    path = Path(path).expanduser().resolve()
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise SourceError(f"{path}: unsupported type '{path.suffix}'")
    data = _read_bytes(path, config)
    if kind == "pdf":
        return LoadResult([_load_pdf(path, data)])
    text = _decode(path, data, config)
    if kind == "jsonl":
        return _load_jsonl(path, text)
    loader = {"md": lambda: _markdown_document(path, text, "md"), "html": lambda: _load_html(path, text)}
    doc = loader.get(kind, lambda: _load_txt(path, text))()
    if not doc.blocks:
        raise SourceError(f"{path}: no text found")
    return LoadResult([doc])


def _read_bytes(path: Path, config: IngestConfig) -> bytes:
    try:
        size = path.stat().st_size
        if size > config.max_file_mb * 1024 * 1024:
            raise SourceError(f"{path}: file is {size / 2**20:.1f} MB, larger than max_file_mb = {config.max_file_mb}")
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise SourceError(f"{path}: file is empty")
    return data


def _decode(path: Path, data: bytes, config: IngestConfig) -> str:
    if b"\x00" in data[:1_000_000]:
        raise SourceError(f"{path}: binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: invalid UTF-8 at byte offset {exc.start}") from None
    longest = max(map(len, text.splitlines()), default=0)
    if longest > config.max_line_chars:
        line = next(i for i, s in enumerate(text.splitlines(), 1) if len(s) == longest)
        raise SourceError(f"{path}: line {line} has {longest:,} characters, more than max_line_chars = "
                          f"{config.max_line_chars:,}")
    if not text.strip():
        raise SourceError(f"{path}: file is empty")
    return text


def _document(path: Path, title: str, blocks: list[Block], fmt: str, doc_id: str | None = None,
              meta: dict[str, Any] | None = None) -> Document:
    metadata = {**(meta or {}), "format": fmt}
    return Document(doc_id or str(path), str(path), title, tuple(b for b in blocks if b.text.strip()), metadata)


def _short(line: str) -> str | None:
    line = line.strip()
    return line if 0 < len(line) <= _TITLE_MAX else None


def _load_txt(path: Path, text: str) -> Document:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return _document(path, _short(first) or path.stem, [Block(text)], "txt")


# ---- markdown (also used for the HTML main text, which trafilatura gives as markdown) ---------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> link text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?!\w)"), r"\1"),  # italic with *
    (re.compile(r"`([^`]+)`"), r"\1"),  # inline code
    (re.compile(r"<[^>\n]+>"), ""),  # inline html tags
]


def _strip_inline(line: str) -> str:
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return line


def _md_sections(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(level, heading, body lines)``; level 0 is the text before the first heading."""
    level, heading, body, fenced = 0, "", [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            yield level, heading, body
            level, heading, body = len(match.group(1)), _strip_inline(match.group(2)), []
        else:
            body.append(line if fenced else _strip_inline(line))
    yield level, heading, body


def _markdown_document(path: Path, text: str, fmt: str, title: str | None = None) -> Document:
    sections = list(_md_sections(text))
    h1s = [h for level, h, _ in sections if level == 1]
    # a lone leading H1 is the document title, not a section: "Install > Linux", not "Guide > Install > Linux"
    title_h1 = len(h1s) == 1 and len(sections) > 1 and sections[1][0] == 1
    stack: list[tuple[int, str]] = []
    blocks = []
    for level, heading, body in sections:
        if level:
            stack = [(lv, h) for lv, h in stack if lv < level] + [(level, heading)]
        path_parts = [h for lv, h in stack if not (title_h1 and lv == 1)]
        blocks.append(Block("\n".join(body).strip(), section=" > ".join(path_parts) or None))
    return _document(path, title or (h1s[0] if h1s else path.stem), blocks, fmt)


# ---- html ---------------------------------------------------------------------------------------------------------


def _load_html(path: Path, html: str) -> Document:
    import trafilatura  # noqa: PLC0415 - heavy import, only needed for HTML

    meta = trafilatura.extract_metadata(html)
    title = _short(meta.title if meta and meta.title else "") or path.stem
    main = trafilatura.extract(html, output_format="markdown", include_formatting=True, favor_recall=True,
                               include_comments=False)
    if main and main.strip():
        return _markdown_document(path, main, "html", title=title)
    # no main text found (e.g. a page of bare divs): fall back to every visible text node
    return _document(path, title, [Block(trafilatura.html2txt(html) or "")], "html")


# ---- pdf ----------------------------------------------------------------------------------------------------------


def _load_pdf(path: Path, data: bytes) -> Document:
    from pypdf import PdfReader  # noqa: PLC0415

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf logs every recoverable glitch
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{path}: PDF is encrypted (password protected)")
        blocks = [Block(page.extract_text() or "", page=number) for number, page in enumerate(reader.pages, 1)]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for broken files
        raise SourceError(f"{path}: broken PDF: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if not any(b.text.strip() for b in blocks):
        raise SourceError(f"{path}: PDF has no extractable text (scanned images?)")
    return _document(path, _short(info_title) or path.stem, blocks, "pdf")


# ---- jsonl --------------------------------------------------------------------------------------------------------


def _load_jsonl(path: Path, text: str) -> LoadResult:
    docs: list[Document] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = _jsonl_record(path, line, number, warnings)
        except ValueError as exc:
            warnings.append(f"line {number}: {exc} — skipped")
            continue
        if doc.doc_id in seen:
            warnings.append(f"line {number}: duplicate id '{doc.doc_id.rsplit('#', 1)[1]}' — skipped")
            continue
        seen.add(doc.doc_id)
        docs.append(doc)
    if not docs:
        raise SourceError(f"{path}: no usable records ({warnings[0] if warnings else 'empty'})")
    return LoadResult(docs, warnings)


def _jsonl_record(path: Path, line: str, number: int, warnings: list[str]) -> Document:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    body = row.get("text")
    if not isinstance(body, str) or not body.strip():
        raise ValueError("record has no 'text'")
    record_id = row.get("_id", row.get("id"))
    record_id = str(record_id) if record_id not in (None, "") else f"line-{number}"
    title = row.get("title") if isinstance(row.get("title"), str) else ""
    meta = _user_metadata(row.get("metadata"), number, warnings)
    return _document(path, title.strip(), [Block(body)], "jsonl", f"{path}#{record_id}", meta)


def _user_metadata(meta: Any, number: int, warnings: list[str]) -> dict[str, Any]:
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
