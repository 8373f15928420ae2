"""SQLite passage store: sources, passages (unique by content hash) and chunks (where each passage occurs).

A passage is stored and embedded once however many documents contain it; ``chunks`` records every occurrence
(source, document, order, character offsets, metadata). ``passages.vector_id`` is NULL until the passage's vector
is in the FAISS index: that column is the embedding queue, which is what makes a killed ingest resumable.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.types import Filters, Passage

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources(
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, hash TEXT, size INTEGER, mtime REAL,
    settings TEXT, status TEXT NOT NULL, error TEXT, n_documents INTEGER DEFAULT 0,
    n_passages INTEGER DEFAULT 0, updated REAL);
CREATE TABLE IF NOT EXISTS passages(
    id TEXT PRIMARY KEY, text TEXT NOT NULL, vector_id INTEGER UNIQUE, n_tokens INTEGER NOT NULL,
    embed_text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    doc_id TEXT NOT NULL, ord INTEGER NOT NULL, passage_id TEXT NOT NULL, title TEXT,
    start INTEGER, end INTEGER, metadata TEXT, PRIMARY KEY(doc_id, ord));
CREATE INDEX IF NOT EXISTS chunks_passage ON chunks(passage_id);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source_id);
CREATE INDEX IF NOT EXISTS passages_pending ON passages(vector_id) WHERE vector_id IS NULL;
"""


@dataclass(frozen=True)
class SourceState:
    path: str
    hash: str | None
    size: int | None
    mtime: float | None
    settings: str | None
    status: str
    error: str | None
    n_passages: int


def connect(path: Path) -> sqlite3.Connection:
    """Open the KB database in WAL mode so readers (``rag status``, ``rag ask``) work while an ingest writes."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class PassageStore:
    """Sources, passages and chunks in one SQLite file.

    Example:
        >>> store = PassageStore(Path("kb/kb.sqlite"))
        >>> store.counts()["passages"]
        0
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # ---- meta ---------------------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # ---- sources ------------------------------------------------------------------------------------------------

    def source(self, path: str) -> SourceState | None:
        row = self.conn.execute(
            "SELECT path, hash, size, mtime, settings, status, error, n_passages FROM sources WHERE path=?", (path,)
        ).fetchone()
        return SourceState(*row) if row else None

    def sources(self) -> list[SourceState]:
        rows = self.conn.execute(
            "SELECT path, hash, size, mtime, settings, status, error, n_passages FROM sources ORDER BY path"
        ).fetchall()
        return [SourceState(*r) for r in rows]

    def source_passage_ids(self, path: str) -> list[str]:
        """The passage ids of one source in document order (``summarize --source``); empty if not ingested."""
        rows = self.conn.execute(
            "SELECT c.passage_id FROM chunks c JOIN sources s ON s.id = c.source_id WHERE s.path = ? "
            "ORDER BY c.doc_id, c.ord", (path,))
        return list(dict.fromkeys(pid for (pid,) in rows))

    def source_root(self) -> str | None:
        """The deepest folder holding every ingested source (labels are shown relative to it); None when empty."""
        paths = [p for (p,) in self.conn.execute("SELECT path FROM sources WHERE status != 'failed'")]
        if not paths:
            return None
        root = os.path.commonpath(paths)
        return root if len(paths) > 1 or root != paths[0] else os.path.dirname(root)

    def touch_source(self, path: str, size: int, mtime: float) -> None:
        self.conn.execute("UPDATE sources SET size=?, mtime=? WHERE path=?", (size, mtime, path))

    def mark_failed(self, path: str, error: str) -> None:
        """Record a failure; a source that failed before and had passages keeps them (nothing stored is lost)."""
        self.conn.execute(
            "INSERT INTO sources(path, status, error, updated) VALUES(?, 'failed', ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET error=excluded.error, updated=excluded.updated, "
            "status=CASE WHEN sources.n_passages > 0 THEN sources.status ELSE 'failed' END",
            (path, error, time.time()),
        )

    def replace_source(
        self, path: str, digest: str, size: int, mtime: float, settings: str, passages: Sequence[Passage],
        embed_texts: Sequence[str], n_documents: int,
    ) -> None:
        """Replace a source's chunks in one transaction; the source stays 'pending' until its vectors exist."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO sources(path, hash, size, mtime, settings, status, error, n_documents, n_passages, "
                "updated) VALUES(?,?,?,?,?,'pending',NULL,?,?,?) ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, "
                "size=excluded.size, mtime=excluded.mtime, settings=excluded.settings, status='pending', error=NULL, "
                "n_documents=excluded.n_documents, n_passages=excluded.n_passages, updated=excluded.updated",
                (path, digest, size, mtime, settings, n_documents, len(passages), time.time()),
            )
            source_id = self.conn.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()[0]
            self.conn.execute("DELETE FROM chunks WHERE source_id=?", (source_id,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO passages(id, text, vector_id, n_tokens, embed_text) VALUES(?,?,NULL,?,?)",
                [(p.id, p.text, p.n_tokens, e) for p, e in zip(passages, embed_texts, strict=True)],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO chunks(source_id, doc_id, ord, passage_id, title, start, end, metadata) "
                "VALUES(?,?,?,?,?,?,?,?)",
                [(source_id, p.doc_id, p.order, p.id, p.title, p.start, p.end, json.dumps(dict(p.metadata)))
                 for p in passages],
            )

    def mark_done(self, paths: Iterable[str]) -> None:
        self.conn.executemany("UPDATE sources SET status='done' WHERE path=?", [(p,) for p in paths])

    def delete_sources(self, paths: Iterable[str]) -> int:
        with self.transaction():
            n = 0
            for path in paths:
                n += self.conn.execute("DELETE FROM sources WHERE path=?", (path,)).rowcount
            return n

    # ---- passages and vectors -----------------------------------------------------------------------------------

    def pending(self, limit: int) -> list[tuple[str, str]]:
        """Passages waiting for a vector: ``(passage_id, embed_text)``."""
        return self.pending_excluding(limit, set())

    def pending_total(self) -> int:
        """How many passages wait for a vector."""
        return self.conn.execute("SELECT COUNT(*) FROM passages WHERE vector_id IS NULL").fetchone()[0]

    def embedded_total(self) -> int:
        """How many passages have a vector (what BM25 must hold)."""
        return self.conn.execute("SELECT COUNT(*) FROM passages WHERE vector_id IS NOT NULL").fetchone()[0]

    def pending_count(self, limit: int) -> int:
        """How many passages wait for a vector, counting at most ``limit`` (cheap to call after every file)."""
        sql = "SELECT COUNT(*) FROM (SELECT 1 FROM passages WHERE vector_id IS NULL LIMIT ?)"
        return self.conn.execute(sql, (limit,)).fetchone()[0]

    def pending_excluding(self, limit: int, exclude: set[str]) -> list[tuple[str, str]]:
        """Like ``pending`` but skipping passages embedded in this run and not yet checkpointed."""
        rows = self.conn.execute(
            "SELECT id, embed_text FROM passages WHERE vector_id IS NULL LIMIT ?", (limit + len(exclude),)
        ).fetchall()
        return [r for r in rows if r[0] not in exclude][:limit]

    def embed_texts_for(self, ids: Sequence[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for batch in _batches(list(ids), 500):
            marks = ",".join("?" * len(batch))
            out += self.conn.execute(f"SELECT id, embed_text FROM passages WHERE id IN ({marks})", batch).fetchall()
        return out

    def next_vector_ids(self, n: int) -> list[int]:
        """Reserve ``n`` fresh vector ids (never reused, so a stale FAISS id can't point to a new passage)."""
        with self.transaction():
            start = int(self.get_meta("next_vector_id", "0"))
            self.set_meta("next_vector_id", str(start + n))
        return list(range(start, start + n))

    def assign_vectors(self, pairs: Sequence[tuple[str, int]]) -> None:
        with self.transaction():
            self.conn.executemany("UPDATE passages SET vector_id=? WHERE id=?", [(v, p) for p, v in pairs])

    def orphans(self) -> list[tuple[str, int | None]]:
        """Passages no chunk refers to any more: ``(passage_id, vector_id)``."""
        return self.conn.execute(
            "SELECT id, vector_id FROM passages p WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.passage_id=p.id)"
        ).fetchall()

    def delete_passages(self, ids: Sequence[str]) -> None:
        with self.transaction():
            self.conn.executemany("DELETE FROM passages WHERE id=?", [(i,) for i in ids])

    def vector_map(self) -> dict[int, str]:
        rows = self.conn.execute("SELECT vector_id, id FROM passages WHERE vector_id IS NOT NULL")
        return dict(rows.fetchall())

    def clear_vectors(self, vector_ids: Sequence[int]) -> None:
        """Put passages whose vectors were lost back in the embedding queue."""
        with self.transaction():
            self.conn.executemany("UPDATE passages SET vector_id=NULL WHERE vector_id=?", [(v,) for v in vector_ids])

    def live_texts(self) -> Iterator[tuple[str, str]]:
        """Every passage that has a vector, as ``(passage_id, text)`` (what BM25 indexes)."""
        yield from self.conn.execute("SELECT id, embed_text FROM passages WHERE vector_id IS NOT NULL")

    def embed_texts(self) -> Iterator[tuple[str, int, str]]:
        yield from self.conn.execute("SELECT id, vector_id, embed_text FROM passages WHERE vector_id IS NOT NULL")

    def counts(self) -> dict[str, int]:
        one = self.conn.execute
        return {
            "sources": one("SELECT COUNT(*) FROM sources WHERE status != 'failed'").fetchone()[0],
            "failed_sources": one("SELECT COUNT(*) FROM sources WHERE status = 'failed'").fetchone()[0],
            "documents": one("SELECT COUNT(DISTINCT doc_id) FROM chunks").fetchone()[0],
            "passages": one("SELECT COUNT(*) FROM passages").fetchone()[0],
            "embedded": one("SELECT COUNT(*) FROM passages WHERE vector_id IS NOT NULL").fetchone()[0],
        }

    # ---- lookups for retrieval (rag.retrieve.RetrievalLookup) --------------------------------------------------

    def get_passages(self, ids: Sequence[str]) -> dict[str, Passage]:
        """Each passage with its first occurrence (lowest source id, then document order) as its location.

        Rows come in descending order so that the first occurrence is the one written last.
        """
        out: dict[str, Passage] = {}
        for batch in _batches(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                f"SELECT p.id, p.text, p.n_tokens, c.doc_id, s.path, c.title, c.ord, c.start, c.end, c.metadata "
                f"FROM passages p JOIN chunks c ON c.passage_id = p.id JOIN sources s ON s.id = c.source_id "
                f"WHERE p.id IN ({marks}) ORDER BY s.id DESC, c.doc_id DESC, c.ord DESC",
                batch,
            ).fetchall()
            for pid, text, n_tok, doc_id, src, title, order, start, end, meta in rows:
                out[pid] = Passage(pid, text, doc_id, src, title or "", order, start, end, n_tok, json.loads(meta))
        return out

    def passage_ids_for_vectors(self, vector_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for batch in _batches([int(v) for v in vector_ids], 500):
            marks = ",".join("?" * len(batch))
            out.update(self.conn.execute(f"SELECT vector_id, id FROM passages WHERE vector_id IN ({marks})", batch))
        return out

    def vector_ids_for(self, passage_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for batch in _batches(list(passage_ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                f"SELECT id, vector_id FROM passages WHERE vector_id IS NOT NULL AND id IN ({marks})", batch
            )
            out.update(rows)
        return out

    def allowed_ids(self, filters: Filters | None) -> set[str] | None:
        """Passage ids whose occurrence matches every filter; ``None`` when there is no filter."""
        if filters is None or filters.is_empty():
            return None
        rows = self.conn.execute(
            "SELECT c.passage_id, s.path, c.metadata FROM chunks c JOIN sources s ON s.id = c.source_id"
        )
        return {pid for pid, path, meta in rows if _matches(filters, path, json.loads(meta))}

    # ---- plumbing -----------------------------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error); nested uses join the outer transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> sqlite3.Connection:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self.outer:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _matches(filters: Filters, path: str, meta: dict) -> bool:
    src = filters.source
    if src and not (fnmatch.fnmatch(path, src) or path == src or path.startswith(src.rstrip("/") + "/")):
        return False
    tags = set(meta.get("tags") or ())
    if filters.tags and not set(filters.tags) <= tags:
        return False
    date = str(meta.get("date") or "")
    if (filters.date_from or filters.date_to) and not date:
        return False
    if filters.date_from and _period_end(date) < filters.date_from:  # "2024" lasts until 2024-12-31
        return False
    return not (filters.date_to and date[: len(filters.date_to)] > filters.date_to)


def _period_end(date: str) -> str:
    """The last day of a year (``2024``) or month (``2024-06``) as a comparable string; full dates unchanged."""
    return date + {4: "-12-31", 7: "-31"}.get(len(date), "")


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
