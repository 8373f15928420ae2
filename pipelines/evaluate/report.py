"""Evaluation run artifacts: results.jsonl (appended as queries finish), metrics.json, report.md and PNG plots.

Example:
    >>> writer = ResultsWriter(Path("runs/x/results.jsonl"))  # doctest: +SKIP
    >>> writer.append({"mode": "rag", "id": "q1", "correct": True})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


# Published / locally measured reference figures, shown beside ours (see shared/data/*/README.md).
REFERENCES: dict[str, list[tuple[str, str]]] = {
    "scifact": [("BM25 (bm25s), nDCG@10", "0.662"), ("all-MiniLM-L6-v2 dense, nDCG@10", "0.649"),
                ("RRF(BM25, MiniLM), nDCG@10", "0.691"), ("bge-small-en-v1.5, nDCG@10", "0.713")],
    "pubmedqa": [("majority class, accuracy", "55.2 %"), ("BioBERT, accuracy", "68.1 %"),
                 ("single human, accuracy", "78.0 %"), ("SmolLM2-135M closed-book (choice), accuracy", "45.3 %"),
                 ("SmolLM2-135M gold context (choice), accuracy", "57.3 %")],
}


class ResultsWriter:
    """Appends one JSON line per finished query and flushes, so an interrupted job can resume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def done(self) -> list[dict[str, Any]]:
        """Records already written; a torn last line (a crash mid-write) is ignored."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._drop_torn_line()
        with self.path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            fh.flush()


    def _drop_torn_line(self) -> None:
        """A crash mid-write leaves a last line without a newline: cut it so new records start on their own line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])


def write_metrics(run_dir: Path, payload: Mapping[str, Any]) -> Path:
    path = run_dir / "metrics.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    return path


# ---- report.md ------------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def mode_metrics(metrics: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The ``mode/...`` keys of a flat metrics dict, without the prefix."""
    prefix = mode + "/"
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}


def _sort_key(key: str) -> tuple[str, int]:
    base, _, k = key.partition("@")
    return base, int(k) if k.isdigit() else 0


def _mode_table(metrics: Mapping[str, Any], modes: Sequence[str]) -> list[str]:
    per_mode = {m: mode_metrics(metrics, m) for m in modes}
    keys = sorted({k for v in per_mode.values() for k in v}, key=_sort_key)
    rows = [[key] + [per_mode[m].get(key) for m in modes] for key in keys]
    return _table(["metric"] + list(modes), rows)


def write_report_md(run_dir: Path, info: Mapping[str, Any]) -> Path:
    """A person-readable summary: job, metrics per mode side by side, references, warnings, plots."""
    metrics, modes = info["metrics"], list(info["modes"])
    lines = [f"# Evaluation: {info['name']}", "",
             f"Dataset `{info['dataset']}` ({info['kind']}, split `{info['split']}`), "
             f"{info['counts'].get('queries', 0)} queries, primary mode `{info['primary_mode']}`.",
             (f"Label scoring: {info.get('scoring', '–')}. " if info.get("has_labels") else "")
             + f"Fingerprint `{info['fingerprint'][:16]}`.", "",
             "## Metrics per mode", ""]
    lines += _mode_table(metrics, modes)
    lines += _example_lines(info.get("examples", {}))
    if "recovery_ratio" in metrics:
        lines += ["", f"Distillation recovery ratio (closed+adapter − closed) / (rag − closed): "
                      f"{_fmt(metrics.get('recovery_ratio'))}"]
    refs = REFERENCES.get(_reference_key(info["dataset"], info["kind"]), [])
    if refs:
        lines += ["", "## Reference figures (same data; not produced by this run)", ""]
        lines += _table(["system", "value"], refs)
    lines += ["", "## Counts", ""] + _table(["count", "value"], sorted(info["counts"].items()))
    if info.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in info["warnings"]]
    plots = info.get("plots", [])
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pick_examples(records: Sequence[Mapping[str, Any]], n: int = 3) -> dict[str, list[dict[str, Any]]]:
    """The ``n`` best (correct, shortest) and ``n`` worst (wrong; unanswered facts before bad abstentions) answers."""
    right = sorted((r for r in records if r.get("correct")), key=lambda r: (len(str(r.get("answer", ""))), r["id"]))
    wrong = sorted((r for r in records if not r.get("correct")), key=lambda r: (bool(r.get("abstained")), r["id"]))
    keep = ("id", "question", "gold", "answer", "style", "supported", "abstained", "citations", "latency_s")
    return {"best": [{k: r.get(k) for k in keep} for r in right[:n]],
            "worst": [{k: r.get(k) for k in keep} for r in wrong[:n]]}


def _example_lines(examples: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    lines: list[str] = []
    for title, key in (("Best answers", "best"), ("Worst answers", "worst")):
        rows = examples.get(key) or []
        if not rows:
            continue
        lines += ["", f"## {title} (primary mode)", ""]
        for r in rows:
            kinds = ", ".join(f"[{c['marker']}] {c['kind']}" for c in r.get("citations") or []) or "none"
            answer = " ".join(str(r.get("answer", "")).split())
            lines += [f"- **{r['id']}** {r['question']}", f"  - gold: {r.get('gold')}",
                      f"  - answer ({r.get('style') or 'generated'}, supported: {_fmt(r.get('supported'))}, "
                      f"abstained: {r.get('abstained')}, {_fmt(r.get('latency_s'))} s): {answer[:300]}",
                      f"  - citations: {kinds}"]
    return lines


def _reference_key(dataset: str, kind: str) -> str:
    name = Path(dataset).name.lower()
    return "pubmedqa" if kind == "pubmedqa" else ("scifact" if "scifact" in name else name)


# ---- plots ----------------------------------------------------------------------------------------------------


def write_plots(run_dir: Path, metrics: Mapping[str, Any], modes: Sequence[str],
                latencies: Mapping[str, Sequence[float]]) -> list[Path]:
    """recall@k curves per retrieval mode, a latency histogram per mode, and accuracy (or F1) bars."""
    out = [p for p in (_recall_plot(run_dir, metrics, modes), _latency_plot(run_dir, latencies),
                       _accuracy_plot(run_dir, metrics, modes)) if p is not None]
    return out


def _recall_plot(run_dir: Path, metrics: Mapping[str, Any], modes: Sequence[str]) -> Path | None:
    curves = {}
    for mode in modes:
        points = sorted((int(m.group(1)), v) for k, v in mode_metrics(metrics, mode).items()
                        if (m := re.fullmatch(r"recall@(\d+)", k)))
        if points:
            curves[mode] = points
    if not curves:
        return None
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    for mode, points in curves.items():
        ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=mode)
    ax.set(xscale="log", xlabel="k (documents)", ylabel="Recall@k", title="Recall@k per retrieval mode", ylim=(0, 1))
    ax.legend()
    return _save(fig, run_dir / "recall_at_k.png")


def _latency_plot(run_dir: Path, latencies: Mapping[str, Sequence[float]]) -> Path | None:
    kept = {m: v for m, v in latencies.items() if v}
    if not kept:
        return None
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    for mode, values in kept.items():
        ax.hist(values, bins=20, alpha=0.5, label=mode)
    ax.set(xlabel="seconds per query", ylabel="queries", title="Latency per query")
    ax.legend()
    return _save(fig, run_dir / "latency_hist.png")


def _accuracy_plot(run_dir: Path, metrics: Mapping[str, Any], modes: Sequence[str]) -> Path | None:
    for key in ("accuracy", "f1"):
        bars = {m: mode_metrics(metrics, m).get(key) for m in modes}
        bars = {m: v for m, v in bars.items() if v is not None}
        if bars:
            break
    else:
        return None
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    ax.bar(list(bars), list(bars.values()), color="tab:blue")
    for i, v in enumerate(bars.values()):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom")
    ax.set(ylabel=key, title=f"{key} per mode", ylim=(0, 1))
    return _save(fig, run_dir / f"{key}_per_mode.png")


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported when a chart is drawn (0.9 s: not at `rag` start)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
