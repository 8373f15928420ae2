"""`rag --help` and `rag status` stay light: they must not import torch (or transformers), which take seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "sentence_transformers", "llama_cpp")

# run the real CLI entry point in a fresh interpreter, then report which heavy modules it loaded
PROBE = """
import json, sys
from pipelines.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def _run(cwd: Path, *args: str) -> dict:
    # outside the checkout, so the defaults apply rather than whatever ./config.toml holds
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    result = _run(tmp_path, "--help")
    assert result["code"] == 0
    assert result["heavy"] == []


@pytest.mark.slow
def test_status_does_not_import_torch(sample_kb: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, "--kb", str(sample_kb), "status")
    assert result["code"] == 0
    assert result["heavy"] == []
