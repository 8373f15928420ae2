"""The `rag` knowledge-base commands end to end: ingest, status, remove, check, repair, reindex; global options
after the subcommand; SIGPIPE; skipped files summarised by extension; files without text exit 0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import build_parser, main
from pipelines.cli.kb import skipped_lines
from pipelines.config import Settings
from pipelines.kb_admin import reindex, status

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge" / "sample"


def test_global_options_are_accepted_after_the_subcommand() -> None:
    args = build_parser().parse_args(["ingest", "docs", "--kb", "mykb", "--config", "c.toml"])
    assert (args.kb, args.config, args.paths) == ("mykb", "c.toml", ["docs"])


def test_global_options_before_the_subcommand_still_work() -> None:
    args = build_parser().parse_args(["--kb", "first", "status"])
    assert args.kb == "first"


def test_skipped_files_are_counted_per_extension_unless_verbose() -> None:
    skipped = [{"path": f"/d/{i}.png", "reason": "unsupported type '.png'"} for i in range(248)]
    skipped.append({"path": "/d/link.md", "reason": "symbolic link ... not followed"})
    lines = skipped_lines(skipped, verbose=False)
    assert lines[0] == "248 .png files (unsupported type)" and len(lines) == 3
    assert len(skipped_lines(skipped, verbose=True)) == 249


@pytest.mark.parametrize("bad", ["", "/"])
def test_remove_refuses_paths_that_match_everything(tmp_path: Path, bad: str, capsys) -> None:
    (tmp_path / "kb").mkdir()
    code = main(["remove", bad, "--kb", str(tmp_path / "kb")])
    assert code == 2 and "every source" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.slow
def test_ingest_status_remove_check_repair_and_reindex(tmp_path: Path, sample_kb: Path, capsys) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(sample_kb, kb, ignore=shutil.ignore_patterns(".lock"))
    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "a" / "one.md").write_text("# One\n\nThe first note is about kelp.\n")
    (docs / "a" / "two.md").write_text("# Two\n\nThe second note is about terns.\n")
    (docs / "a" / "video.md").write_text("# Video\n\n<iframe src='x'></iframe>\n")
    (docs / "drafts").mkdir()
    (docs / "drafts" / "wip.md").write_text("# WIP\n\nNot ready.\n")
    assert main(["ingest", str(docs), "--kb", str(kb), "--exclude", "drafts", "--json"]) == 0  # no-text file: exit 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["no_text"], report["failed"]) == (2, 1, [])
    assert main(["remove", str(docs / "a"), "--kb", str(kb)]) == 1  # two sources through a folder: needs --yes
    assert "add --yes" in capsys.readouterr().err
    assert main(["remove", str(docs / "a"), "--dry-run", "--json", "--kb", str(kb)]) == 0
    assert len(json.loads(capsys.readouterr().out)["would_remove"]) == 3
    assert main(["remove", str(docs / "a"), "--yes", "--kb", str(kb)]) == 0
    assert "removed 3 source(s)" in capsys.readouterr().out
    assert main(["check", "--kb", str(kb)]) == 0 and capsys.readouterr().out.rstrip().endswith("ok")
    (kb / "vectors.faiss").unlink()
    assert main(["check", "--kb", str(kb)]) == 1 and "vectors.faiss is missing" in capsys.readouterr().out
    assert main(["repair", "--kb", str(kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    settings = Settings().override({"kb.path": str(kb)})
    before = status(settings)
    result = reindex(settings, show_progress=False)
    after = status(settings)
    assert result["passages"] == before["passages"] == after["vectors"] and after["warnings"] == []
    llama = status(settings.override({"generation.backend": "llamacpp"}))["generation"]
    assert llama["backend"] == "llamacpp" and llama["gguf_type"] == ("BF16" if llama["cpu_bf16"] else "F16")
    hf = status(settings.override({"generation.backend": "transformers"}))["generation"]
    assert hf["backend"] == "transformers" and "gguf_type" not in hf


@pytest.mark.integration
def test_status_json_into_a_closed_pipe_ends_quietly(sample_kb: Path) -> None:
    # `true` exits at once, so the pipe is closed long before rag writes: like `| head -1` on a long output
    cmd = f"set -o pipefail; {sys.executable} -m pipelines.cli status --json --kb {sample_kb} | true"
    done = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert (done.returncode in (0, 141), done.stderr) == (True, "")  # 141: ended by SIGPIPE, like `yes | true`
