"""Find source files and load them into ``Document``s: text, Markdown, HTML, PDF and JSONL.

A problem with one file never stops the others: ``discover`` reports missing paths, unsupported files and
symlinks it did not follow; ``load`` raises ``SourceError`` (one line, naming the file) for fatal problems and
returns warnings for recoverable ones (a malformed JSONL line is skipped and reported with its line number; a
file without any text is a warning, not a failure). The loaders live in ``knowledge.formats``.

File names that are not valid UTF-8 are shown and stored in an escaped form (``caf\\xe9.txt``,
``knowledge.files.display_path``) so that one odd name never aborts a run.

Example:
    >>> from knowledge.config import IngestConfig
    >>> found = discover(["knowledge/sample"], IngestConfig())
    >>> docs = [d for f in found.files for d in load(f, IngestConfig()).documents]
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.config import IngestConfig
from knowledge.files import display_path, read_regular_file
from knowledge.formats.common import LoadResult
from knowledge.formats.html import load_html
from knowledge.formats.jsonl import load_jsonl
from knowledge.formats.markdown import markdown_document
from knowledge.formats.pdf import load_pdf
from knowledge.formats.text import check_lines, declared_charset, decode, load_txt
from rag.errors import SourceError

__all__ = ["SUPPORTED", "Discovery", "LoadResult", "discover", "load"]

SUPPORTED = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf",
             ".jsonl": "jsonl"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_GLOB_TOKENS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


@dataclass(frozen=True)
class Discovery:
    """Files found by ``discover``; ``skipped`` and ``failed`` hold ``(display path, reason)`` pairs."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


# ---- discovery ----------------------------------------------------------------------------------------------------


class _Walk:
    """State of one ``discover`` call: what was found, and the roots that symlinks may not leave."""

    def __init__(self, config: IngestConfig, exclude: Sequence[str]) -> None:
        self.config = config
        self.exclude = [*config.exclude, *exclude]
        self.found: set[Path] = set()
        self.skipped: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []
        self.roots: list[str] = []

    def take(self, path: Path) -> None:
        if self._excluded_path(path):
            return
        if path.suffix.lower() in SUPPORTED:
            resolved = path.resolve()
            # a link to a FIFO or a device keeps the name the user gave, so that its failure names it
            self.found.add(resolved if resolved.is_file() else path.absolute())
        else:
            self.skipped.append((display_path(path), f"unsupported type '{path.suffix or path.name}'"))

    def link_allowed(self, path: Path) -> bool:
        """Whether the symlink ``path`` may be followed under ``config.follow_symlinks`` (records a skip if not)."""
        policy = self.config.follow_symlinks
        if policy == "always":
            return True
        target = os.path.realpath(path)
        if policy == "within" and any(target == r or target.startswith(r.rstrip("/") + "/") for r in self.roots):
            return True
        where = "" if policy == "never" else f" to {display_path(target)} leads outside the given folders;"
        self.skipped.append((display_path(path), f"symbolic link{where} not followed "
                                                 f"(ingest.follow_symlinks = \"{policy}\")"))
        return False

    def excluded(self, name: str) -> bool:
        return name.startswith(".") or any(fnmatch.fnmatch(name, pattern) for pattern in self.exclude)

    def _excluded_path(self, path: Path) -> bool:
        """``--exclude`` globs also match whole paths (``*/release-notes.md``, ``docs/legacy/*``)."""
        text = str(path)
        return any(fnmatch.fnmatch(text, p) for p in self.exclude if "/" in p)


def discover(paths: Sequence[str | Path], config: IngestConfig, exclude: Sequence[str] = ()) -> Discovery:
    """Expand files, folders (recursively) and glob patterns (``docs/**/*.md``) into the supported files to load.

    Folders honour ``config.include``/``config.exclude`` (and ``exclude``, e.g. from ``--exclude``) and skip
    hidden entries; a file named explicitly or matched by a pattern only needs a supported type. Symlinks met in
    folders are followed per ``config.follow_symlinks``: ``within`` (default) only when they stay inside the
    given roots, ``never``, or ``always``; each folder is visited once (loops are cut). Nothing here raises for a
    bad path: it becomes a ``failed`` entry.
    """
    walk = _Walk(config, exclude)
    # folders and glob prefixes confine symlinks; a file named explicitly is taken as it is
    walk.roots = [os.path.realpath(root) for raw in paths
                  if (root := _root_of(Path(raw).expanduser(), str(raw))).is_dir()]
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for file in _files_under(path, walk):
                if any(fnmatch.fnmatch(file.name, pattern) for pattern in config.include):
                    walk.take(file)
                else:
                    walk.skipped.append((display_path(file), f"unsupported type '{file.suffix or file.name}'"))
        elif path.exists():  # a file named explicitly (a FIFO or a device is refused when it is read)
            walk.take(path)
        elif _GLOB_CHARS.search(str(raw)):
            _glob(str(path), walk)
        elif path.is_symlink():
            walk.failed.append((display_path(raw), "broken symbolic link"))
        else:
            walk.failed.append((display_path(raw), "path does not exist"))
    return Discovery(sorted(walk.found), walk.skipped, walk.failed)


def _root_of(path: Path, raw: str) -> Path:
    """The folder a path argument confines symlinks to: the folder itself or a glob's fixed prefix."""
    if _GLOB_CHARS.search(raw) and not path.exists():
        parts = path.parts
        fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
        return Path(*parts[:fixed]) if fixed else Path(".")
    return path


def _glob(pattern: str, walk: _Walk) -> None:
    """Walk the pattern's fixed prefix ourselves: glob.glob follows symlink loops 40 levels deep (exponentially)."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    regex = _glob_regex("/".join(parts[fixed:]))
    matched = False
    for file in _files_under(root, walk) if root.is_dir() else ():
        rel = file.relative_to(root).parts
        if any(regex.fullmatch("/".join(rel[:i])) for i in range(1, len(rel) + 1)):  # the file or a folder above
            matched = True
            walk.take(file)
    if not matched:
        walk.failed.append((display_path(pattern), "no files match the pattern"))


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


def _files_under(root: Path, walk: _Walk) -> Iterator[Path]:
    """Files below ``root``, without hidden or excluded entries; each real folder is visited once."""
    visited: set[str] = set()
    def on_error(exc: OSError) -> None:
        walk.failed.append((display_path(exc.filename), f"cannot read folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        real = os.path.realpath(dirpath)
        if real in visited:  # a symlink loop, or a second link to the same folder
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not walk.excluded(d) and _follow(Path(dirpath) / d, walk))
        for name in sorted(n for n in filenames if not walk.excluded(n)):
            path = Path(dirpath) / name
            if not path.exists():
                walk.failed.append((display_path(path), "broken symbolic link"))
            elif _follow(path, walk):
                yield path


def _follow(path: Path, walk: _Walk) -> bool:
    return not path.is_symlink() or walk.link_allowed(path)


# ---- loading ------------------------------------------------------------------------------------------------------


def load(path: Path, config: IngestConfig, data: bytes | None = None) -> LoadResult:
    """Read one file into documents. Raises ``SourceError`` naming the file when it cannot be used at all.

    ``data`` is the file's content when the caller already read it (ingest hashes it first). A file without any
    text (empty, only headings, a page of iframes, a scanned PDF) gives no documents and a warning.
    """
    path = Path(path).expanduser().resolve()
    shown = display_path(path)
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise SourceError(f"{shown}: unsupported type '{path.suffix}'")
    if data is None:
        data, _ = read_regular_file(path, config.max_file_bytes, shown)
    if kind == "pdf":
        docs = [load_pdf(shown, path.stem, data)]
        return _no_text_warning(docs, "PDF has no extractable text (scanned images?)")
    text = decode(shown, data, declared_charset(data) if kind == "html" else None)
    if kind == "jsonl":
        return load_jsonl(shown, text, config.max_line_chars) if text.strip() else _no_text_warning([], "file is empty")
    check_lines(shown, text, config.max_line_chars)
    if not text.strip():
        return _no_text_warning([], "file is empty")
    if kind == "md":
        doc = markdown_document(shown, path.stem, text)
    elif kind == "html":
        doc = load_html(shown, path.stem, text)
    else:
        doc = load_txt(shown, path.stem, text)
    return _no_text_warning([doc], "no text found")


def _no_text_warning(docs: list, reason: str) -> LoadResult:
    docs = [d for d in docs if d.blocks]
    return LoadResult(docs, [] if docs else [f"{reason}; nothing to index"])
