"""The server's guards and job runner on their own (no models): upload names, server-path roots, jobs."""

from __future__ import annotations

import os

import pytest

from pipelines.serve.jobs import JobManager
from pipelines.serve.security import confine, safe_filename


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\notes.md", "notes.md"), (".bashrc", "bashrc"),
    ("report (final) ü.pdf", "report_final_.pdf"), ("a/b/.hidden.txt", "hidden.txt"),
])
def test_upload_names_lose_folders_dots_and_odd_characters(given, expected):
    assert safe_filename(given) == expected


@pytest.mark.parametrize("bad", ["", "../", "...", "///", "ü"])
def test_upload_names_without_usable_characters_are_refused(bad):
    with pytest.raises(ValueError, match="no usable characters"):
        safe_filename(bad)


def test_server_paths_must_stay_inside_the_roots(tmp_path):
    root, outside = tmp_path / "docs", tmp_path / "secret"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "sub" / "link")
    assert confine(str(root / "sub"), [str(root)]) == (root / "sub").resolve()
    for path in (str(root / ".." / "secret"), str(root / "sub" / "link"), "/etc/passwd"):
        with pytest.raises(PermissionError, match="outside serve.ingest_roots"):
            confine(path, [str(root)])
    with pytest.raises(PermissionError, match="disabled"):
        confine(str(root), [])


def test_jobs_report_results_and_failures_in_order_of_submission():
    jobs = JobManager(keep=3)
    ok = jobs.submit("ingest", lambda: {"added": 2})
    bad = jobs.submit("ingest", lambda: 1 / 0)
    assert jobs.wait(ok.id, 10).status == "done" and ok.result == {"added": 2}
    assert jobs.wait(bad.id, 10).status == "failed" and "division by zero" in bad.error
    assert bad.started >= ok.finished  # one worker per kind: a second ingest waits for the first
    for _ in range(3):
        jobs.submit("distill", lambda: None)
    assert jobs.get(ok.id) is None and len(jobs.list()) == 3  # only the last `keep` are remembered
    jobs.shutdown()
