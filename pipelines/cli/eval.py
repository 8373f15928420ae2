"""`rag eval DATASET` / `rag eval --job job.toml`: batch evaluation of retrieval, answers and distillation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines.evaluate.data import KINDS
from pipelines.evaluate.modes import ANSWER_MODES, RETRIEVAL_MODES
from pipelines.cli.kb import engine_args
from pipelines.config import Settings
from pipelines.evaluate import EvalJob, EvalReport

SUMMARY_KEYS = ("ndcg@10", "recall@100", "mrr@10", "map", "accuracy", "em", "f1", "citation_precision",
                "abstention_rate", "latency_p50_s")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand to the ``rag`` parser."""
    p = subparsers.add_parser("eval", help="evaluate retrieval / answers / an adapter on a dataset",
                              description="Evaluate a BEIR folder, a QA JSONL file or PubMedQA; writes runs/<stamp>-<name>/.")
    p.add_argument("dataset", nargs="?", help="BEIR folder, QA .jsonl, or PubMedQA folder")
    p.add_argument("--job", help="TOML job file (dataset, modes, split, limit, seed, ...); flags override it")
    p.add_argument("--format", choices=KINDS, help="dataset kind (default: detected from the path)")
    p.add_argument("--split", help="split (BEIR qrels/<split>.tsv; PubMedQA test/train)")
    p.add_argument("--limit", type=int, help="evaluate a seeded random subset of this many queries")
    p.add_argument("--seed", type=int, help="seed for sampling and generation (default: eval.seed)")
    p.add_argument("--mode", action="append", dest="modes", choices=RETRIEVAL_MODES + ANSWER_MODES,
                   help="repeatable; default: sparse/dense/hybrid for BEIR, closed/rag/oracle for QA")
    p.add_argument("--adapter", help="LoRA adapter folder to compare against the base model")
    p.add_argument("--scoring", choices=("auto", "choice", "generate"), default=None,
                   help="yes/no/maybe scoring: next-token choice or parse the generated text (auto: choice)")
    p.add_argument("--name", help="run name (default: <dataset>-<split>)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the latest interrupted run of this job (or RUN_DIR)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    engine_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the job from the flags (and job file), run it, print the summary or JSON."""
    options = {"modes": args.modes, "split": args.split, "limit": args.limit, "seed": args.seed,
               "name": args.name, "adapter": args.adapter, "format": args.format, "scoring": args.scoring,
               "resume": args.resume, "engine": args.engine, "address": args.address}
    progress = not (args.no_progress or args.json)
    if not progress:
        settings = settings.override({"ingest.show_progress": False})
    if args.job:
        if args.dataset:
            options["dataset"] = str(Path(args.dataset).resolve())
        job = EvalJob.from_toml(args.job, settings, show_progress=progress, **options)
    elif args.dataset:
        options["scoring"] = options["scoring"] or "auto"
        job = EvalJob(args.dataset, settings, show_progress=progress, **options)
    else:
        raise ValueError("give a DATASET path or --job job.toml")
    report = job.run()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str, ensure_ascii=False))
    else:
        print_summary(report)
    return 0


def print_summary(report: EvalReport) -> None:
    """A short table per mode on stdout; the full report is in the run folder."""
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{report.name}: {report.counts.get('queries', 0)} queries -> {report.run_dir}")
    for mode in report.modes:
        values = [f"{k}={report.metrics[f'{mode}/{k}']:.3f}" for k in SUMMARY_KEYS
                  if report.metrics.get(f"{mode}/{k}") is not None]
        print(f"  {mode:16s} " + "  ".join(values))
    if report.metrics.get("recovery_ratio") is not None:
        print(f"  recovery ratio   {report.metrics['recovery_ratio']:.3f}")
    print(f"report: {report.run_dir / 'report.md'}")
