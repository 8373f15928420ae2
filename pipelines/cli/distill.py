"""`rag distill [--if-due]` and `rag adapters list | activate ID | rollback`."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from pipelines.cli.output import print_json
from pipelines.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="fold frequently retrieved knowledge into a LoRA adapter (gated)")
    p.add_argument("--if-due", action="store_true", help="only when distill.every_n_queries asks were logged since")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=_distill)
    p = sub.add_parser("adapters", help="list, activate or roll back the KB's LoRA adapters")
    p.add_argument("action", choices=("list", "activate", "rollback"))
    p.add_argument("adapter_id", nargs="?", metavar="ID", help="the adapter to activate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_adapters)


def _distill(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.distill import DistillRound

    report = DistillRound(settings, progress=not args.json).run(if_due=args.if_due)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"{'PROMOTED' if report.promoted else 'not promoted'}: {report.reason}")
    print(f"  adapter   {report.adapter or '-'}\n  passages  {report.passages}\n  seconds   {report.seconds}")
    print_gate(report.metrics.get("gate", {}))
    return 0


def print_gate(groups: dict) -> None:
    """One line per gate group: accuracy before -> after, items gained/lost, and the McNemar p-values."""
    for group, m in groups.items():
        print(f"  {group:<9} {m['before']:.3f} -> {m['after']:.3f}  ({m['delta']:+.3f}; n={m['n']}, "
              f"+{m['gained']}/-{m['lost']}, p_gain={m['p_gain']:.3g}, p_loss={m['p_loss']:.3g})")


def _adapters(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.distill.adapters import AdapterRegistry

    registry = AdapterRegistry(settings.kb.path)
    if args.action == "activate":
        if not args.adapter_id:
            raise ValueError("`rag adapters activate` needs an adapter ID (see `rag adapters list`)")
        registry.activate(args.adapter_id)
        return _done(args, {"active": args.adapter_id})
    if args.action == "rollback":
        return _done(args, {"active": registry.rollback()})
    rows = [{k: m.get(k) for k in ("id", "active", "promoted", "created", "parent", "reason")}
            | {"passages": len(m.get("passages", {})), "gate": (m.get("metrics") or {}).get("gate", {})}
            for m in registry.list()]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        when = datetime.fromtimestamp(r["created"], timezone.utc).strftime("%Y-%m-%d %H:%M") if r["created"] else "-"
        print(f"{'*' if r['active'] else ' '} {r['id']}  {when}  passages={r['passages']:<4} "
              f"{'promoted' if r['promoted'] else 'rejected'}  {r['reason'] or ''}")
        print_gate(r["gate"])
    if not rows:
        print("no adapters yet (run `rag distill`)")
    return 0


def _done(args: argparse.Namespace, result: dict) -> int:
    if args.json:
        print_json(result)
    else:
        print(f"active adapter: {result['active'] or 'none (base model)'}")
    return 0
