"""`rag ingest | remove | status | reindex`."""

from __future__ import annotations

import argparse

from pipelines.cli.output import print_json
from rag.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="add files, folders or globs to the knowledge base")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--prune", action="store_true", help="drop sources under the given folders that no longer exist")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_ingest)
    p = sub.add_parser("remove", help="remove sources (files or folders) from the knowledge base")
    p.add_argument("paths", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_remove)
    p = sub.add_parser("status", help="counts, model and index of the knowledge base")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)
    p = sub.add_parser("reindex", help="re-embed every passage with the configured embedding model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_reindex)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.ingest import IngestPipeline

    if args.json:
        settings = settings.override({"ingest.show_progress": False})
    report = IngestPipeline.from_config(settings).run(args.paths, prune=args.prune)
    if args.json:
        print_json(report.to_dict())
    else:
        _print_ingest_table(report)
    return 1 if report.failed else 0


def _print_ingest_table(report) -> None:  # noqa: ANN001 - IngestReport
    rows = [("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged),
            ("removed", report.removed), ("failed", len(report.failed)), ("skipped", len(report.skipped)),
            ("embedded now", report.embedded), ("passages in KB", report.passages), ("seconds", report.seconds)]
    print(f"knowledge base: {report.kb}")
    for name, value in rows:
        print(f"  {name:<15} {value:>10}")
    if report.embedded == 0 and not (report.added or report.updated):
        print("nothing changed: no passage was embedded")
    for item in report.failed:
        print(f"  FAILED  {item['path']}: {item['error']}")
    for item in report.skipped:
        print(f"  skipped {item['path']}: {item['reason']}")
    for warning in report.warnings:
        print(f"  warning {warning}")


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import remove_sources

    result = remove_sources(settings, args.paths)
    if args.json:
        print_json(result)
    else:
        print(f"removed {result['removed']} source(s); {result['passages']} passages remain")
        for path in result["not_found"]:
            print(f"  not in the knowledge base: {path}")
    return 1 if result["not_found"] else 0


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
        else:
            print(f"{key:<20} {value}")
    return 0


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.kb_admin import reindex

    result = reindex(settings, show_progress=not args.json)
    print_json(result) if args.json else print(f"re-embedded {result['passages']} passages with {result['embedding_model']}")
    return 0
