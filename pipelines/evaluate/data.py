"""Evaluation datasets: BEIR folders, QA JSONL files and PubMedQA, loaded into one typed shape.

Example:
    >>> ds = load_dataset("tests/fixtures/eval/beir", split="test")  # doctest: +SKIP
    >>> ds.kind, len(ds.queries)  # doctest: +SKIP
    ('beir', 3)
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["beir", "qa", "pubmedqa"]
KINDS: tuple[str, ...] = ("beir", "qa", "pubmedqa")
LABELS: tuple[str, ...] = ("yes", "no", "maybe")


class DatasetError(ValueError):
    """A dataset file is malformed or a requested split does not exist; the message names the file and line."""


@dataclass(frozen=True)
class EvalQuery:
    """One question. ``relevant`` maps BEIR doc ids (or KB passage/doc ids) to graded relevance."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    label: str | None = None
    relevant: dict[str, int] = field(default_factory=dict)
    gold_context: str | None = None
    unanswerable: bool = False  # the documents do not hold the answer: the right response is to abstain


@dataclass(frozen=True)
class EvalDataset:
    """A loaded dataset. ``corpus`` is a BEIR-style JSONL to ingest into a job KB, or None (use the user's KB)."""

    name: str
    kind: Kind
    split: str
    queries: tuple[EvalQuery, ...]
    files: tuple[Path, ...]
    corpus: Path | None = None
    warnings: tuple[str, ...] = ()
    corpus_rows: tuple[dict[str, str], ...] = ()

    @property
    def has_labels(self) -> bool:
        return any(q.label for q in self.queries)


def detect_format(path: str | Path) -> Kind:
    """Guess the dataset kind from the path: a BEIR folder, a PubMedQA folder/file, or a QA JSONL file."""
    p = Path(path)
    if p.is_dir():
        if (p / "corpus.jsonl").is_file() and (p / "queries.jsonl").is_file():
            return "beir"
        if (p / "ori_pqal.json").is_file():
            return "pubmedqa"
        raise DatasetError(f"{p}: neither a BEIR folder (corpus.jsonl + queries.jsonl) nor PubMedQA (ori_pqal.json)")
    if p.name == "ori_pqal.json":
        return "pubmedqa"
    if p.suffix == ".jsonl" and p.is_file():
        return "qa"
    raise DatasetError(f"{p}: not a dataset (expected a BEIR folder, a PubMedQA folder or a QA .jsonl file)")


def load_dataset(path: str | Path, kind: str | None = None, split: str | None = None,
                 limit: int | None = None, seed: int = 0) -> EvalDataset:
    """Load ``path`` as ``kind`` (detected when None); ``limit`` keeps a seeded random subset of the queries."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"format must be one of {KINDS}, got {kind!r}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be greater than 0, got {limit}")
    kind = kind or detect_format(path)
    loader = {"beir": load_beir, "qa": load_qa, "pubmedqa": load_pubmedqa}[kind]
    ds = loader(Path(path), split)
    return _subset(ds, limit, seed) if limit is not None else ds


def _subset(ds: EvalDataset, limit: int, seed: int) -> EvalDataset:
    if limit >= len(ds.queries):
        return ds
    picked = random.Random(seed).sample(range(len(ds.queries)), limit)
    queries = tuple(ds.queries[i] for i in sorted(picked))
    return EvalDataset(ds.name, ds.kind, ds.split, queries, ds.files, ds.corpus, ds.warnings, ds.corpus_rows)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)``; a bad line is a DatasetError naming the file and line."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def _require(row: dict[str, Any], key: str, path: Path, n: int) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{path}:{n}: missing field '{key}'")
    return str(value)


# ---- BEIR ------------------------------------------------------------------------------------------------------


def load_beir(folder: Path, split: str | None = None) -> EvalDataset:
    """A BEIR folder: queries in ``qrels/<split>.tsv`` with their relevant corpus ids (default split: test)."""
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    split = split or ("test" if "test" in splits else (splits[0] if splits else "test"))
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        raise DatasetError(f"{folder}: no split '{split}'; available splits: {', '.join(splits) or 'none'}")
    doc_ids = {_require(r, "_id", folder / "corpus.jsonl", n) for n, r in read_jsonl(folder / "corpus.jsonl")}
    texts = {_require(r, "_id", folder / "queries.jsonl", n): _require(r, "text", folder / "queries.jsonl", n)
             for n, r in read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(qrels_file)
    unknown_q = [q for q in qrels if q not in texts]
    unknown_d = {d for rel in qrels.values() for d in rel if d not in doc_ids}
    warnings = _qrels_warnings(qrels_file, unknown_q, unknown_d)
    queries = tuple(EvalQuery(id=q, question=texts[q], relevant=rel) for q, rel in qrels.items() if q in texts)
    files = (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_file)
    return EvalDataset(folder.resolve().name, "beir", split, queries, files, folder / "corpus.jsonl", warnings)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` rows (a header line is skipped); zero scores are kept out."""
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if not line.strip() or (n == 1 and parts[0] == "query-id"):
            continue
        if len(parts) != 3:
            raise DatasetError(f"{path}:{n}: expected 3 tab-separated columns, got {len(parts)}")
        try:
            score = int(parts[2])
        except ValueError:
            raise DatasetError(f"{path}:{n}: score {parts[2]!r} is not an integer") from None
        if score > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def _qrels_warnings(path: Path, unknown_q: list[str], unknown_d: set[str]) -> tuple[str, ...]:
    out = []
    if unknown_q:
        out.append(f"{path}: {len(unknown_q)} queries not in queries.jsonl (skipped), e.g. {unknown_q[0]!r}")
    if unknown_d:
        out.append(f"{path}: {len(unknown_d)} judged docs not in corpus.jsonl, e.g. {sorted(unknown_d)[0]!r}")
    return tuple(out)


# ---- QA JSONL --------------------------------------------------------------------------------------------------


def load_qa(path: Path, split: str | None = None) -> EvalDataset:
    """Rows ``{id, question, answers: [...] and/or label, context_ids?: [...], context?: str, split?: str}``.

    ``context_ids`` lists what retrieval should find: KB passage ids, document ids (the source path, or
    ``path#record-id`` for JSONL records) or bare JSONL record ids. ``unanswerable: true`` (with no answers)
    marks a question the documents do not answer, scored by abstention.
    """
    queries, splits = [], set()
    for n, row in read_jsonl(path):
        splits.add(str(row.get("split", "")))
        if split is not None and str(row.get("split", "")) != split:
            continue
        queries.append(_qa_query(row, path, n))
    if split is not None and not queries:
        raise DatasetError(f"{path}: no split '{split}'; available splits: {', '.join(sorted(splits - {''})) or 'none'}")
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: duplicate question ids")
    return EvalDataset(path.stem, "qa", split or "all", tuple(queries), (path,))


def _qa_query(row: dict[str, Any], path: Path, n: int) -> EvalQuery:
    answers = row.get("answers", [])
    if isinstance(answers, str) or not isinstance(answers, list):
        raise DatasetError(f"{path}:{n}: 'answers' must be a list of strings")
    label = row.get("label")
    if label is not None and str(label).lower() not in LABELS:
        raise DatasetError(f"{path}:{n}: label {label!r} is not one of {LABELS}")
    unanswerable = row.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise DatasetError(f"{path}:{n}: 'unanswerable' must be true or false")
    if not answers and label is None and not unanswerable:
        raise DatasetError(f"{path}:{n}: needs 'answers', 'label' or 'unanswerable': true")
    ctx_ids = row.get("context_ids", [])
    return EvalQuery(id=_require(row, "id", path, n), question=_require(row, "question", path, n),
                     answers=tuple(str(a) for a in answers), label=str(label).lower() if label else None,
                     relevant={str(c): 1 for c in ctx_ids}, gold_context=row.get("context"),
                     unanswerable=unanswerable)


# ---- PubMedQA --------------------------------------------------------------------------------------------------


def load_pubmedqa(path: Path, split: str | None = None) -> EvalDataset:
    """PubMedQA PQA-L: split ``test`` = the PMIDs in test_ground_truth.json, ``train`` = the other 500."""
    folder = path if path.is_dir() else path.parent
    ori, truth_file = folder / "ori_pqal.json", folder / "test_ground_truth.json"
    data, truth = _read_json(ori), _read_json(truth_file)
    split = split or "test"
    if split not in ("test", "train"):
        raise DatasetError(f"{folder}: no split '{split}'; available splits: test, train")
    pmids = [p for p in truth] if split == "test" else [p for p in data if p not in truth]
    missing = [p for p in pmids if p not in data]
    if missing:
        raise DatasetError(f"{truth_file}: {len(missing)} PMIDs not in {ori.name}, e.g. {missing[0]!r}")
    queries = tuple(_pubmed_query(p, data[p], truth.get(p), ori) for p in pmids)
    rows = tuple({"_id": p, "title": "", "text": _abstract(r, ori, p)} for p, r in data.items())
    return EvalDataset("pubmedqa", "pubmedqa", split, queries, (ori, truth_file), None, (), rows)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object keyed by PMID")
    return data


def _abstract(row: dict[str, Any], path: Path, pmid: str) -> str:
    contexts = row.get("CONTEXTS")
    if not isinstance(contexts, list) or not contexts:
        raise DatasetError(f"{path}: PMID {pmid}: missing CONTEXTS")
    return " ".join(str(c) for c in contexts)


def _pubmed_query(pmid: str, row: dict[str, Any], truth: str | None, path: Path) -> EvalQuery:
    label = str(truth or row.get("final_decision", "")).lower()
    if label not in LABELS:
        raise DatasetError(f"{path}: PMID {pmid}: label {label!r} is not one of {LABELS}")
    question = row.get("QUESTION")
    if not question:
        raise DatasetError(f"{path}: PMID {pmid}: missing QUESTION")
    return EvalQuery(id=pmid, question=str(question), label=label, relevant={pmid: 1},
                     gold_context=_abstract(row, path, pmid))
