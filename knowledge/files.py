"""Small file helpers shared by the knowledge base: atomic JSON writes, JSON reads that name the file, display
forms of file names that are not valid UTF-8, and bounded reads of regular files.

Example:
    >>> write_json_atomic(Path("kb/manifest.json"), {"format_version": 1})
    >>> read_json(Path("kb/manifest.json"), "the KB manifest", "run `rag repair`")["format_version"]
    1
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

from rag.errors import KnowledgeBaseError, SourceError

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def write_json_atomic(path: Path, data: Any) -> None:  # noqa: ANN401 - any JSON value
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one, never half of one.

    The temporary file is fsynced before the rename and the folder after it, so the rename survives power loss.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:6]}.tmp")  # unique: two writers never share a temp file
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Persist a rename inside ``folder`` (a no-op where folders cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path, what: str, repair: str) -> Any:  # noqa: ANN401 - any JSON value
    """Parse a JSON file; a missing, unreadable or invalid file raises ``KnowledgeBaseError`` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeBaseError(f"{path}: {what} is missing; {repair}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise KnowledgeBaseError(f"{path}: {what} is not valid JSON ({reason}); {repair}") from None


def display_path(path: str | bytes | os.PathLike) -> str:
    """A printable, storable form of a path: bytes that are not UTF-8, and control characters such as a newline,
    become ``\\xNN`` escapes (so one file is always one line).

    File names on Linux are bytes; Python decodes undecodable ones to lone surrogates, which SQLite, JSON and
    ``print`` refuse ("surrogates not allowed").
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) if _CONTROL.search(text) else text


def is_clean_name(path: str | os.PathLike) -> bool:
    """Whether the path is shown and stored as it is (valid UTF-8, no control characters)."""
    try:
        return display_path(path) == os.fspath(path)
    except (TypeError, ValueError):
        return False


def read_regular_file(path: Path, limit: int, shown: str | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most ``limit`` bytes, and its ``stat``.

    The opened file is checked with ``fstat`` before any byte is read, so a FIFO, a device (``/dev/zero``) or a
    folder is refused at once; the read itself is bounded too, in case the file grew (or lied about its size).
    """
    shown = shown or display_path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then checks what was really opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fd)
            _check_regular(info, limit, shown)
            data = fh.read(limit + 1)
    except OSError as exc:
        raise SourceError(f"{shown}: cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SourceError(f"{shown}: file grew past ingest.max_file_bytes = {limit:,} while it was read")
    return data, info


def _check_regular(info: os.stat_result, limit: int, shown: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise SourceError(f"{shown}: not a regular file but {kind}; only regular files are ingested")
    if info.st_size > limit:
        raise SourceError(f"{shown}: file is {info.st_size:,} bytes, larger than ingest.max_file_bytes = {limit:,}")
