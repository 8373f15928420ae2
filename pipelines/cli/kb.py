"""`rag ingest | remove | status | reindex | check | repair`."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import PurePath

from pipelines.cli.output import print_json
from pipelines.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="add files, folders or globs to the knowledge base")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--prune", action="store_true", help="drop sources under the given folders that no longer exist")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="never ingest files or folders matching this name or path glob (repeatable)")
    p.add_argument("--verbose", "-v", action="store_true", help="list every skipped file, not a count per type")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    engine_args(p)
    p.set_defaults(func=_ingest)
    p = sub.add_parser("remove", help="remove sources (files or folders) from the knowledge base")
    p.add_argument("paths", nargs="+", metavar="SOURCE")
    p.add_argument("--yes", "-y", action="store_true", help="remove several sources matched through a folder")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed, remove nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_remove)
    p = sub.add_parser("status", help="counts, model and index of the knowledge base")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)
    p = sub.add_parser("reindex", help="re-embed every passage with the configured embedding model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_reindex)
    p = sub.add_parser("check", help="verify every file of the knowledge base, its counts and ids")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_check)
    p = sub.add_parser("repair", help="rebuild FAISS and BM25 from SQLite and embed what is missing (keeps copies)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_repair)


def engine_args(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and ``--address`` (shared with `rag eval`)."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="ray: parallel tasks on a Ray cluster (pip install 'rag-knowledge[ray]')")
    p.add_argument("--address", help="Ray cluster address ('auto' = the running one; default serve.ray_address, "
                                     "else a local Ray on this machine)")


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.ingest import IngestPipeline

    if args.json:
        settings = settings.override({"ingest.show_progress": False})
    if args.engine == "ray":
        from pipelines.ray_ingest import RayIngestPipeline

        pipeline = RayIngestPipeline(settings, address=args.address or settings.serve.ray_address or None)
    else:
        pipeline = IngestPipeline.from_config(settings)
    report = pipeline.run(args.paths, prune=args.prune, exclude=args.exclude)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_ingest_table(report, args.verbose)
    return 1 if report.failed else 0


def _print_ingest_table(report, verbose: bool) -> None:  # noqa: ANN001 - IngestReport
    rows = [("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged),
            ("no text", report.no_text), ("removed", report.removed), ("failed", len(report.failed)),
            ("skipped", len(report.skipped)), ("embedded now", report.embedded), ("passages in KB", report.passages),
            ("seconds", report.seconds)]
    print(f"knowledge base: {report.kb}")
    for name, value in rows:
        print(f"  {name:<15} {value:>10}")
    if report.embedded == 0 and not (report.added or report.updated):
        print("nothing changed: no passage was embedded")
    for item in report.failed:
        print(f"  FAILED  {item['path']}: {item['error']}")
    for line in skipped_lines(report.skipped, verbose):
        print(f"  skipped {line}")
    for warning in report.warnings:
        print(f"  warning {warning}")


def skipped_lines(skipped: list[dict[str, str]], verbose: bool) -> list[str]:
    """Every skipped file with ``verbose``; otherwise unsupported files counted per extension, other skips
    (symlinks not followed) listed."""
    if verbose:
        return [f"{item['path']}: {item['reason']}" for item in skipped]
    by_type = Counter(PurePath(i["path"]).suffix.lower() or "(none)" for i in skipped
                      if i["reason"].startswith("unsupported type"))
    lines = [f"{n} {ext} file{'s' if n > 1 else ''} (unsupported type)" for ext, n in sorted(by_type.items())]
    lines += [f"{i['path']}: {i['reason']}" for i in skipped if not i["reason"].startswith("unsupported type")]
    if by_type:
        lines.append("(--verbose lists every skipped file)")
    return lines


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import remove_sources

    result = remove_sources(settings, args.paths, confirmed=args.yes, dry_run=args.dry_run)
    if args.json:
        print_json(result)
    elif result["would_remove"]:
        verb = "would remove" if args.dry_run else "refusing to remove"
        print(f"{verb} {len(result['would_remove'])} source(s):")
        for path in result["would_remove"]:
            print(f"  {path}")
        if result["needs_confirmation"]:
            print("they were matched through a folder, not named exactly: add --yes to remove them", file=sys.stderr)
    else:
        print(f"removed {result['removed']} source(s); {result['passages']} passages remain")
    if not args.json:
        for path in result["not_found"]:
            print(f"  not in the knowledge base: {path}")
    return 1 if result["not_found"] or result["needs_confirmation"] else 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import status

    result = status(settings)
    if args.json:
        print_json(result)
        return 0
    for key, value in result.items():
        if key == "failed":
            for item in value:
                print(f"  FAILED  {item['path']}: {item['error']}")
        elif key == "warnings":
            for warning in value:
                print(f"warning: {warning}", file=sys.stderr)
        elif isinstance(value, dict):
            print(f"{key:<20} " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            print(f"{key:<20} {value}")
    return 0


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import reindex

    result = reindex(settings, show_progress=not args.json)
    print_json(result) if args.json else print(f"re-embedded {result['passages']} passages with {result['embedding_model']}")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import check_kb

    report = check_kb(settings)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"knowledge base: {report.kb}")
        for key, value in report.counts.items():
            print(f"  {key:<15} {value:>10}")
        for note in report.notes:
            print(f"  note    {note}")
        for problem in report.problems:
            print(f"  PROBLEM {problem}")
        print("ok" if report.ok else f"{len(report.problems)} problem(s): run `rag repair` to rebuild (keeps copies)")
    return 0 if report.ok else 1


def _repair(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import repair_kb

    result = repair_kb(settings)
    if args.json:
        print_json(result)
    else:
        for action in result["actions"] or ["nothing to rebuild in the files"]:
            print(f"  {action}")
        print(f"embedded {result['embedded']} passages; {result['passages']} passages in the knowledge base")
        for problem in result["problems"]:
            print(f"  PROBLEM {problem}")
    return 0 if result["ok"] else 1
