"""Check every file of a knowledge base, and repair what can be rebuilt from SQLite (`rag check`, `rag repair`).

``check`` opens each file on its own (the manifest, ``kb.sqlite`` with SQLite's ``quick_check``, ``vectors.faiss``,
the BM25 index, the adapters pointer) and compares ids across them: every FAISS id must be a passage's vector id
and back, and BM25 must hold exactly the embedded passages. ``repair_files`` fixes what is derived data, keeping a
copy of everything it replaces under ``kb/backups/<time>/``: it rewrites a broken manifest from the configured
embedding, sets a damaged ``kb.sqlite`` aside (its sources must be ingested again), drops stray vectors, puts
passages whose vectors were lost back in the embedding queue, and rebuilds BM25. The caller then embeds the queue.

Example:
    >>> report = check(Path("kb"), settings)
    >>> report.ok, report.problems
    (True, [])
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.config import KBSettings
from knowledge.files import write_json_atomic
from knowledge.kb import (
    BM25_DIR, DATABASE, FORMAT_VERSION, MANIFEST, VECTORS, _take_lock, embedding_manifest, open_bm25, open_store,
    open_vectors, read_manifest, release_lock,
)
from knowledge.store import PassageStore
from rag.errors import KnowledgeBaseError


@dataclass
class CheckReport:
    """What ``check`` found: ``problems`` make ``rag check`` exit non-zero, ``notes`` are for information."""

    kb: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"kb": self.kb, "ok": self.ok, "problems": self.problems, "notes": self.notes, "counts": self.counts}


def check(root: Path, settings: KBSettings) -> CheckReport:
    """Verify every file of the KB at ``root``, its counts and its ids; never raises for a damaged file."""
    root = Path(root).expanduser().resolve()
    report = CheckReport(str(root))
    if not (root / MANIFEST).exists() and not (root / DATABASE).exists():
        report.problems.append(f"{root}: no knowledge base here (no {MANIFEST}, no {DATABASE})")
        return report
    _note_writer(root, report)
    dimension = _check_manifest(root, report)
    store = _attempt(report, lambda: open_store(root))
    if store is None:
        return report
    try:
        _check_database(store, report)
        _check_indexes(root, store, dimension, settings, report)
    finally:
        store.close()
    _check_adapters(root, report)
    return report


def _note_writer(root: Path, report: CheckReport) -> None:
    """A running writer (ingest, remove) may be between steps: say so, since its counts can differ for a moment."""
    try:
        release_lock(_take_lock(root))
    except KnowledgeBaseError:
        report.notes.append("another process is writing this knowledge base: counts may differ until it ends")


def _attempt(report: CheckReport, call):  # noqa: ANN001, ANN202
    try:
        return call()
    except KnowledgeBaseError as exc:
        report.problems.append(str(exc))
        return None


def _check_manifest(root: Path, report: CheckReport) -> int | None:
    manifest = _attempt(report, lambda: read_manifest(root))
    if manifest is None:
        return None
    if manifest.get("format_version") != FORMAT_VERSION:
        report.problems.append(f"{root / MANIFEST}: format version {manifest.get('format_version')}, "
                               f"this program reads {FORMAT_VERSION}")
    return int(manifest["embedding"]["dimension"])


def _check_database(store: PassageStore, report: CheckReport) -> None:
    try:
        result = [row[0] for row in store.conn.execute("PRAGMA quick_check")]
        report.counts.update(store.counts())
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"{store.path} is damaged ({exc})")
        return
    if result != ["ok"]:
        report.problems.append(f"{store.path} is damaged (SQLite quick_check: {'; '.join(result[:3])})")
    pending = report.counts.get("passages", 0) - report.counts.get("embedded", 0)
    if pending:
        report.notes.append(f"{pending} passages wait for their vectors (an interrupted ingest): run `rag ingest` "
                            f"again or `rag repair`")


def _check_indexes(root: Path, store: PassageStore, dimension: int | None, settings: KBSettings,
                   report: CheckReport) -> None:
    in_sql = store.vector_map()
    if dimension is not None:
        vectors = _attempt(report, lambda: open_vectors(root, dimension, settings.index, store))
        if vectors is not None:
            in_faiss = set(vectors.ids().tolist())
            report.counts["vectors"] = len(in_faiss)
            stray, lost = len(in_faiss - in_sql.keys()), len(in_sql.keys() - in_faiss)
            if stray or lost:
                report.problems.append(f"{root / VECTORS}: {len(in_faiss)} vectors but {len(in_sql)} embedded "
                                       f"passages in {root / DATABASE} ({stray} without a passage, {lost} passages "
                                       f"without a vector)")
    bm25 = _attempt(report, lambda: open_bm25(root, settings.retrieval, store))
    if bm25 is not None:
        held, live = set(bm25.ids()), set(in_sql.values())
        report.counts["bm25"] = len(held)
        if held != live:
            report.problems.append(f"{root / BM25_DIR}: BM25 holds {len(held)} passages, {len(live)} are embedded "
                                   f"({len(live - held)} missing, {len(held - live)} extra)")


def _check_adapters(root: Path, report: CheckReport) -> None:
    pointer = root / "adapters" / "active.json"
    if pointer.exists():
        try:
            json.loads(pointer.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.problems.append(f"{pointer}: not valid JSON ({exc}); `rag adapters rollback` or delete it")


# ---- repair -------------------------------------------------------------------------------------------------------


def repair_files(root: Path, settings: KBSettings, dimension: int) -> dict[str, object]:
    """Fix the KB's files under its writer lock, keeping copies; the embedding queue is left for the caller.

    ``dimension`` is the configured embedder's, used only when the manifest must be rewritten.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise KnowledgeBaseError(f"no knowledge base at {root}")
    backup = root / "backups" / time.strftime("%Y%m%d-%H%M%S")
    actions: list[str] = []
    lock = _take_lock(root)
    try:
        _repair_manifest(root, settings, dimension, backup, actions)
        _repair_database(root, backup, actions)
        manifest = read_manifest(root)
        store = open_store(root)
        try:
            _repair_vectors(root, store, int(manifest["embedding"]["dimension"]), settings, backup, actions)
            _move_aside(root / BM25_DIR, backup, actions, "BM25 index (rebuilt from kb.sqlite)")
        finally:
            store.close()
    finally:
        release_lock(lock)
    return {"kb": str(root), "actions": actions, "backup": str(backup) if backup.exists() else None}


def _move_aside(path: Path, backup: Path, actions: list[str], what: str, copy: bool = False) -> None:
    if not path.exists():
        return
    backup.mkdir(parents=True, exist_ok=True)
    if not what:  # a companion file (SQLite's -wal/-shm) of one already reported
        shutil.move(str(path), backup / path.name)
        return
    if copy:
        shutil.copy2(path, backup / path.name)
    else:
        shutil.move(str(path), backup / path.name)
    actions.append(f"{what}: old {path.name} kept in {backup}")


def _repair_manifest(root: Path, settings: KBSettings, dimension: int, backup: Path, actions: list[str]) -> None:
    try:
        read_manifest(root)
        return
    except KnowledgeBaseError:
        pass
    _move_aside(root / MANIFEST, backup, actions, "manifest rewritten from the configured embedding model")
    manifest = {"format_version": FORMAT_VERSION, "embedding": embedding_manifest(settings, dimension)}
    write_json_atomic(root / MANIFEST, manifest)
    if not any(a.startswith("manifest") for a in actions):
        actions.append("manifest written from the configured embedding model")


def _repair_database(root: Path, backup: Path, actions: list[str]) -> None:
    path = root / DATABASE
    try:
        store = open_store(root)
        damaged = [r[0] for r in store.conn.execute("PRAGMA quick_check")] != ["ok"]
        store.close()
    except (KnowledgeBaseError, sqlite3.DatabaseError):
        damaged = True
    if not damaged:
        return
    _move_aside(path, backup, actions, "damaged kb.sqlite set aside (ingest your sources again)")
    for part in (path.with_name(DATABASE + "-wal"), path.with_name(DATABASE + "-shm")):
        _move_aside(part, backup, actions, "")
    _move_aside(root / VECTORS, backup, actions, "vectors of the lost passages")
    PassageStore(path).close()


def _repair_vectors(root: Path, store: PassageStore, dimension: int, settings: KBSettings, backup: Path,
                    actions: list[str]) -> None:
    """Keep the vectors SQLite knows, drop the others; passages whose vectors are lost go back in the queue."""
    in_sql = store.vector_map()
    try:
        vectors = open_vectors(root, dimension, settings.index, store)
    except KnowledgeBaseError:
        _move_aside(root / VECTORS, backup, actions, "unreadable FAISS index replaced")
        (root / VECTORS).unlink(missing_ok=True)
        vectors = open_vectors(root, dimension, settings.index, _NoVectors())
    in_faiss = set(vectors.ids().tolist())
    stray = np.array(sorted(in_faiss - in_sql.keys()), dtype=np.int64)
    lost = sorted(in_sql.keys() - in_faiss)
    if len(stray):
        _move_aside(root / VECTORS, backup, actions, f"{len(stray)} stray vectors dropped", copy=True)
        vectors.remove(stray)
    if lost:
        store.clear_vectors(lost)
        actions.append(f"{len(lost)} passages without a vector queued for embedding")
    vectors.save()


class _NoVectors:
    """A stand-in store that records no embedded passages (to start an empty FAISS index)."""

    def embedded_total(self) -> int:
        return 0
