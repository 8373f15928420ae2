"""Rounds by size: one distillation round on the look-alike bank at several amounts of hot traffic, each from a fresh
KB (``bench/distill.py --round-only``): is each round promoted, with general ability within a point, and what does
it cost? Writes ``bench/results/distill_sizes.json`` and ``.md``.

    python bench/distill_sizes.py --sizes 10:5x2 20:10x2 84:28x3 210:70x3

Each size is ``HOT:DOCSxPER_DOC`` (hot facts asked 3 times each, over DOCS authors with PER_DOC facts each); the
teacher keeps about half of them (the verified facts), so 84 hot facts make a round of about 40.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run(size: str, entities: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``bench/distill.py --round-only`` run; its result JSON."""
    hot, shape = size.split(":")
    docs, per_doc = shape.split("x")
    cmd = [sys.executable, str(ROOT / "bench" / "distill.py"), "--bank", "lookalike", "--entities", str(entities),
           "--hot-docs", docs, "--hot-per-doc", per_doc, "--distractors", str(args.distractors), "--pubmedqa", "0",
           "--round2-docs", "0", "--cold-docs", "4", "--traffic", "extractive", "--round-only",
           "--threads", str(args.threads), "--out", str(out), *[f"--set={kv}" for kv in args.set]]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text()) | {"size": size, "command": " ".join(cmd[1:])}


def row(r: dict[str, Any]) -> dict[str, Any]:
    """The table's figures of one run."""
    m = r["round1"]["metrics"]
    gate = m.get("gate", {})
    general, held, near = gate.get("general", {}), gate.get("heldout", {}), gate.get("neighbour", {})
    taught = r.get("taught", {})
    return {"hot_facts": r["hot_facts"], "facts": m.get("facts"), "promoted": r["round1"]["promoted"],
            "heldout": f"{held.get('before', 0):.3f} -> {held.get('after', 0):.3f} (n {held.get('n', 0)})",
            "general": f"{general.get('before', 0):.3f} -> {general.get('after', 0):.3f}",
            "general_delta_points": round(100 * general.get("delta", 0), 1),
            "neighbour": f"{near.get('before', 0):.3f} -> {near.get('after', 0):.3f} (n {near.get('n', 0)})",
            "precision": taught.get("precision"), "taught_right": f"{taught.get('right')}/{taught.get('taught')}",
            "lent": {k: f"{r['closed_before'][k]['lent']} -> {r['closed_after'][k]['lent']} of {r['closed_after'][k]['n']}"
                     for k in ("closed_asked", "closed_other")} if "closed_after" in r else None,
            "closed_asked": (f"{r['closed_before']['closed_asked']['contains']:.3f} -> "
                             f"{r['closed_after']['closed_asked']['contains']:.3f}") if "closed_after" in r else None,
            "round_s": r["round1"]["wall_s"], "peak_rss_mb": r["round1"].get("peak_rss_mb"),
            "reason": r["round1"]["reason"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["10:5x2", "20:10x2", "84:28x3", "210:70x3"])
    ap.add_argument("--distractors", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="bench/results/distill_sizes.json")
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for size in args.sizes:
        docs = int(size.split(":")[1].split("x")[0])
        entities = max(40, 4 * ((docs + 4 + 3) // 4))  # the hot authors, 4 cold ones, whole families of 4
        r = run(size, entities, args, out.with_name(f"{out.stem}_{size.replace(':', '_')}.json"))
        rows.append(row(r) | {"command": r["command"]})
        out.write_text(json.dumps({"rows": rows}, indent=2))
    lines = ["| hot facts | facts taught | promoted | held-out closed-book | general (150) | look-alikes not lent "
             "| taught-fact precision | asked, closed-book (gold) | lent: asked / other authors (base -> adapter) | round s "
             "| peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['hot_facts']} | {r['facts']} | {r['promoted']} | {r['heldout']} | {r['general']} | "
              f"{r['neighbour']} | {r['precision'] if r['precision'] is None else round(r['precision'], 3)} "
              f"({r['taught_right']}) | {r['closed_asked']} | {r['lent'] and ' / '.join(r['lent'].values())} | {r['round_s']} | {r['peak_rss_mb'] and round(r['peak_rss_mb'])} |"
              for r in rows]
    out.with_suffix(".md").write_text("Rounds by size (`" + " ".join(sys.argv) + "`)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
