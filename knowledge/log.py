"""Retrieval log: every ask is an event in the KB; per-passage usage is kept as time-decayed counts.

Writes are O(hits) per ask whatever the size of the log: usage is stored as sums of ``w * 2**((t - T0) / h)``
(a fixed epoch T0), so the decayed count at ``now`` is that sum times ``2**(-(now - T0) / h)`` — one upsert per hit
on write, one multiplication on read. Changing the half-life rebuilds the table from the events.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from knowledge.config import LogConfig
from knowledge.store import PassageStore
from rag.types import Answer

EPOCH = 1_735_689_600.0  # 2025-01-01T00:00:00Z

SCHEMA = """
CREATE TABLE IF NOT EXISTS asks(
    id TEXT PRIMARY KEY, ts REAL NOT NULL, query TEXT, query_hash TEXT NOT NULL, path TEXT, answer TEXT,
    model TEXT, adapter TEXT);
CREATE TABLE IF NOT EXISTS ask_hits(
    ask_id TEXT NOT NULL, passage_id TEXT NOT NULL, rank INTEGER NOT NULL, score REAL, cited INTEGER NOT NULL,
    PRIMARY KEY(ask_id, passage_id));
CREATE INDEX IF NOT EXISTS ask_hits_passage ON ask_hits(passage_id);
CREATE INDEX IF NOT EXISTS asks_ts ON asks(ts);
CREATE TABLE IF NOT EXISTS passage_usage(
    passage_id TEXT PRIMARY KEY, hits_growth REAL NOT NULL, cited_growth REAL NOT NULL, bad_growth REAL NOT NULL,
    hits INTEGER NOT NULL, cited INTEGER NOT NULL, last_ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS feedback(
    id INTEGER PRIMARY KEY, ask_id TEXT NOT NULL, ts REAL NOT NULL, good INTEGER NOT NULL, correction TEXT);
CREATE INDEX IF NOT EXISTS feedback_ask ON feedback(ask_id);
"""


@dataclass(frozen=True)
class PassageUsage:
    """Decayed usage of one passage at the time of reading."""

    passage_id: str
    hits: float
    cited: float
    bad: float
    total_hits: int
    total_cited: int
    last_ts: float


@dataclass(frozen=True)
class BadAnswer:
    """An answer a person marked bad: the question, what was answered, the passage it rested on, the correction."""

    ask_id: str
    question: str
    answer: str
    passage_id: str | None  # the cited passage, else the top hit; None for a closed-book answer without hits
    correction: str | None


def new_answer_id() -> str:
    return uuid.uuid4().hex[:16]


class RetrievalLog:
    """Records asks and feedback; reads hot passages.

    Example:
        >>> log = RetrievalLog(store, LogConfig())
        >>> log.record(answer)
        >>> log.top(5)[0].passage_id
        '3f2a...'
    """

    def __init__(self, store: PassageStore, config: LogConfig) -> None:
        self.store = store
        self.config = config
        store.conn.executescript(SCHEMA)
        self._check_half_life()

    def _growth(self, ts: float) -> float:
        return 2.0 ** ((ts - EPOCH) / (self.config.half_life_days * 86400.0))

    def record(self, answer: Answer, ts: float | None = None) -> None:
        """Store one ask: query (or its hash only), hits with ranks and scores, cited ids, the answer."""
        if not self.config.enabled:
            return
        ts = time.time() if ts is None else ts
        cited = {c.passage_id for c in answer.citations}
        g = self._growth(ts)
        conn = self.store.conn
        with self.store.transaction():
            conn.execute(
                "INSERT OR REPLACE INTO asks(id, ts, query, query_hash, path, answer, model, adapter) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (answer.id, ts, answer.question if self.config.store_queries else None, _hash(answer.question),
                 answer.path, answer.text, answer.model, answer.adapter),
            )
            rows = [(answer.id, h.passage.id, h.rank, h.score, int(h.passage.id in cited)) for h in answer.hits]
            conn.executemany("INSERT OR IGNORE INTO ask_hits VALUES(?,?,?,?,?)", rows)
            conn.executemany(
                "INSERT INTO passage_usage VALUES(?,?,?,0,1,?,?) ON CONFLICT(passage_id) DO UPDATE SET "
                "hits_growth=hits_growth+excluded.hits_growth, cited_growth=cited_growth+excluded.cited_growth, "
                "hits=hits+1, cited=cited+excluded.cited, last_ts=MAX(last_ts, excluded.last_ts)",
                [(pid, g, g * c, c, ts) for _, pid, _, _, c in rows],
            )

    def feedback(self, ask_id: str, good: bool, correction: str | None = None, ts: float | None = None) -> None:
        """Store feedback; a bad answer adds decayed 'bad' weight to the passages it cited (or retrieved)."""
        ts = time.time() if ts is None else ts
        conn = self.store.conn
        if conn.execute("SELECT 1 FROM asks WHERE id=?", (ask_id,)).fetchone() is None:
            raise ValueError(f"no logged answer with id {ask_id!r}")
        with self.store.transaction():
            conn.execute("INSERT INTO feedback(ask_id, ts, good, correction) VALUES(?,?,?,?)",
                         (ask_id, ts, int(good), correction))
            if not good:
                conn.execute(
                    "UPDATE passage_usage SET bad_growth = bad_growth + ? WHERE passage_id IN (SELECT passage_id "
                    "FROM ask_hits WHERE ask_id=? AND (cited=1 OR NOT EXISTS (SELECT 1 FROM ask_hits WHERE "
                    "ask_id=? AND cited=1)))",
                    (self._growth(ts), ask_id, ask_id),
                )

    def usage(self, now: float | None = None, limit: int | None = None) -> list[PassageUsage]:
        """Passages by decayed hit count at ``now``, highest first."""
        decay = 1.0 / self._growth(time.time() if now is None else now)
        sql = "SELECT * FROM passage_usage ORDER BY hits_growth DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [PassageUsage(pid, h * decay, c * decay, b * decay, n, nc, last)
                for pid, h, c, b, n, nc, last in self.store.conn.execute(sql)]

    def asks_since(self, ts: float) -> int:
        return self.store.conn.execute("SELECT COUNT(*) FROM asks WHERE ts > ?", (ts,)).fetchone()[0]

    def questions_for(self, passage_ids: Sequence[str], max_rank: int | None = None) -> dict[str, list[str]]:
        """Logged questions (when stored) that retrieved each passage; with ``max_rank``, only those that ranked
        it at most that high or cited it (a question that merely brushed a passage at rank 5 is not about it)."""
        out: dict[str, list[str]] = {pid: [] for pid in passage_ids}
        marks = ",".join("?" * len(passage_ids))
        if not passage_ids:
            return out
        rank = "" if max_rank is None else f" AND (h.rank <= {int(max_rank)} OR h.cited = 1)"
        rows = self.store.conn.execute(
            f"SELECT h.passage_id, a.query FROM ask_hits h JOIN asks a ON a.id = h.ask_id "
            f"WHERE a.query IS NOT NULL AND h.passage_id IN ({marks}){rank} ORDER BY a.ts", list(passage_ids))
        for pid, query in rows:
            if query not in out[pid]:
                out[pid].append(query)
        return out

    def top_questions(self, exclude: Collection[str] = (), limit: int = 40) -> dict[str, list[str]]:
        """Up to ``limit`` logged questions (newest first) by the passage they ranked first, passages in
        ``exclude`` left out: what users ask about the rest of the knowledge base."""
        if limit <= 0:
            return {}
        skip = list(exclude)
        where = f" AND h.passage_id NOT IN ({','.join('?' * len(skip))})" if skip else ""
        rows = self.store.conn.execute(
            "SELECT h.passage_id, a.query FROM ask_hits h JOIN asks a ON a.id = h.ask_id "
            f"WHERE a.query IS NOT NULL AND h.rank = 1{where} "
            "GROUP BY h.passage_id, a.query ORDER BY MAX(a.ts) DESC LIMIT ?", [*skip, limit])
        out: dict[str, list[str]] = {}
        for pid, query in rows:
            out.setdefault(pid, []).append(query)
        return out

    def corrections(self) -> list[tuple[str, str, str]]:
        """``(ask_id, question, correction)`` for every bad answer a person corrected."""
        return self.store.conn.execute(
            "SELECT f.ask_id, a.query, f.correction FROM feedback f JOIN asks a ON a.id = f.ask_id "
            "WHERE f.good = 0 AND f.correction IS NOT NULL AND a.query IS NOT NULL ORDER BY f.ts").fetchall()

    def bad_answers(self) -> list[BadAnswer]:
        """Every answer marked bad (with its question stored), oldest first: what distillation must unlearn."""
        rows = self.store.conn.execute(
            "SELECT f.ask_id, a.query, a.answer, f.correction, (SELECT h.passage_id FROM ask_hits h WHERE "
            "h.ask_id = f.ask_id ORDER BY h.cited DESC, h.rank LIMIT 1) FROM feedback f JOIN asks a ON a.id = "
            "f.ask_id WHERE f.good = 0 AND a.query IS NOT NULL ORDER BY f.ts").fetchall()
        return [BadAnswer(ask_id, q, answer or "", pid, correction) for ask_id, q, answer, correction, pid in rows]

    def ranked_hits(self, questions: Collection[str], depth: int = 3) -> dict[str, list[str]]:
        """The passages the latest ask of each question retrieved, best first (at most ``depth``)."""
        out: dict[str, list[str]] = {}
        for question in questions:
            rows = self.store.conn.execute(
                "SELECT h.passage_id FROM ask_hits h WHERE h.ask_id = (SELECT id FROM asks WHERE query = ? "
                "ORDER BY ts DESC LIMIT 1) ORDER BY h.rank LIMIT ?", (question, depth)).fetchall()
            out[question] = [pid for (pid,) in rows]
        return out

    def _check_half_life(self) -> None:
        stored = self.store.get_meta("log_half_life_days")
        if stored is not None and math.isclose(float(stored), self.config.half_life_days):
            return
        with self.store.transaction():
            self.store.set_meta("log_half_life_days", str(self.config.half_life_days))
            if stored is not None:
                self._rebuild_usage()

    def _rebuild_usage(self) -> None:
        conn = self.store.conn
        conn.execute("DELETE FROM passage_usage")
        rows = conn.execute("SELECT h.passage_id, a.ts, h.cited FROM ask_hits h JOIN asks a ON a.id = h.ask_id")
        for pid, ts, cited in rows.fetchall():
            g = self._growth(ts)
            conn.execute(
                "INSERT INTO passage_usage VALUES(?,?,?,0,1,?,?) ON CONFLICT(passage_id) DO UPDATE SET "
                "hits_growth=hits_growth+excluded.hits_growth, cited_growth=cited_growth+excluded.cited_growth, "
                "hits=hits+1, cited=cited+excluded.cited, last_ts=MAX(last_ts, excluded.last_ts)",
                (pid, g, g * cited, cited, ts))


def _hash(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()[:16]
