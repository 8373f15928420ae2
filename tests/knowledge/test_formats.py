"""The format loaders and discovery rules added for hostile inputs: Markdown via markdown-it-py, encodings,
HTML fallbacks, JSONL per-line failures, symlink policies, bounded reads of regular files only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from knowledge.config import IngestConfig
from knowledge.files import display_path, read_regular_file, write_json_atomic
from knowledge.formats.html import load_html, stream_text
from knowledge.formats.markdown import markdown_document
from knowledge.formats.text import decode, declared_charset
from knowledge.sources import discover, load
from rag.errors import SourceError


def test_markdown_headings_stay_sections_without_attribute_lists() -> None:
    doc = markdown_document("g.md", "g", "# Guide\n\n## Install { #install .big }\n\nRun it.\n\n### Linux {: #lx }\n\nsh.\n")
    assert [(b.section, b.text) for b in doc.blocks] == [("Install", "Run it."), ("Install > Linux", "sh.")]


def test_markdown_include_directives_and_html_tags_do_not_reach_text() -> None:
    text = "Intro.\n\n{* ../docs_src/app.py hl[1:3] *}\n\n{!> ../docs/tip.md !}\n\n<div markdown>Kept <b>bold</b></div>\n"
    doc = markdown_document("m.md", "m", text)
    assert doc.blocks[0].text == "Intro.\n\nKept bold"


def test_markdown_keeps_code_link_text_image_alt_and_table_cells() -> None:
    text = "See [the docs](http://x) and ![a map](m.png).\n\n```py\nx = 1  # <b>\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    body = markdown_document("m.md", "m", text).blocks[0].text
    assert "See the docs and a map." in body and "x = 1  # <b>" in body and "http" not in body and "1" in body


def test_prose_after_a_code_block_starts_a_paragraph_of_its_own() -> None:
    """The line after a fence is not glued to the fence's last line: the two would read as one sentence."""
    text = "Escaped:\n\n```text\n< > { } |\n```\nFor example, a space is encoded as `%20`.\n\n    x = 1\nThen more.\n"
    body = markdown_document("m.md", "m", text).blocks[0].text
    assert body.split("\n\n") == ["Escaped:", "< > { } |", "For example, a space is encoded as %20.", "x = 1",
                                   "Then more."]


def test_a_table_row_is_one_line_of_cells_pipe_or_html() -> None:
    """Each row is one paragraph, its cells joined by " | ": a row stays one sentence that starts with its name."""
    text = ("| Constant | Meaning |\n|---|---|\n| `SIGKILL` | Sent to terminate it **immediately**. |\n\n"
            "<table>\n  <tr>\n    <td><code>PRIORITY_HIGHEST</code></td>\n    <td>The highest. A nice value of\n"
            "    <code>-20</code> on all.</td>\n  </tr>\n</table>\n")
    body = markdown_document("m.md", "m", text).blocks[0].text
    assert body.split("\n\n") == ["Constant | Meaning", "SIGKILL | Sent to terminate it immediately.",
                                   "PRIORITY_HIGHEST | The highest. A nice value of -20 on all."]


@pytest.mark.parametrize(("data", "text"), [
    ("\ufeffhé".encode("utf-16-le"), "hé"), ("\ufeffhé".encode("utf-16-be"), "hé"),
    ("\ufeffhé".encode("utf-32-le"), "hé"), ("\ufeffhé".encode("utf-8"), "hé"), ("hé".encode(), "hé"),
])
def test_byte_order_marks_pick_the_encoding(data: bytes, text: str) -> None:
    assert decode("f.txt", data) == text


def test_a_declared_charset_is_honoured_and_a_bad_one_ignored() -> None:
    page = '<meta charset="windows-1252"><p>caf\xe9 \u201cquoted\u201d</p>'.encode("cp1252")
    assert declared_charset(page) == "windows-1252" and "café “quoted”" in decode("p.html", page, "windows-1252")
    assert decode("p.html", b"plain", "no-such-charset") == "plain"


def test_deep_html_falls_back_to_streaming_text() -> None:
    page = "<html><body>" + "<div>" * 10_000 + "<p>Deep text.</p><script>x()</script>" + "</div>" * 10_000
    assert "Deep text." in load_html("d.html", "d", page).text and "x()" not in stream_text(page)


def test_jsonl_long_line_fails_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([json.dumps({"id": 1, "text": "one"}), json.dumps({"id": "x" * 300, "text": "two"}),
                               json.dumps({"id": 3, "text": "y" * 200}), json.dumps({"id": 4, "text": "four"})]))
    result = load(path, IngestConfig(max_line_chars=150))
    assert [d.text for d in result.documents] == ["one", "four"]
    assert [w.split(":")[0] for w in result.warnings] == ["line 2", "line 3"]


def _links(tmp_path: Path) -> Path:
    docs, outside = tmp_path / "docs", tmp_path / "out"
    docs.mkdir()
    outside.mkdir()
    (outside / "far.md").write_text("far")
    (docs / "near.md").write_text("near")
    os.symlink(outside / "far.md", docs / "far.md")
    os.symlink(docs / "near.md", docs / "alias.md")
    return docs


@pytest.mark.parametrize(("policy", "names"), [("within", {"near.md"}), ("never", {"near.md"}),
                                               ("always", {"near.md", "far.md"})])
def test_follow_symlinks_policy(tmp_path: Path, policy: str, names: set[str]) -> None:
    found = discover([_links(tmp_path)], IngestConfig(follow_symlinks=policy))
    assert {f.name for f in found.files} == names


def test_skipped_links_say_why(tmp_path: Path) -> None:
    found = discover([_links(tmp_path)], IngestConfig())
    assert [(Path(p).name, "leads outside the given folders" in r) for p, r in found.skipped] == [("far.md", True)]


def test_regular_files_only_and_reads_are_bounded(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(SourceError, match="pipe.txt: not a regular file but a FIFO"):
        read_regular_file(tmp_path / "pipe.txt", 100)
    (tmp_path / "ok.txt").write_bytes(b"x" * 100)
    assert read_regular_file(tmp_path / "ok.txt", 100)[0] == b"x" * 100
    (tmp_path / "ok.txt").write_bytes(b"x" * 101)
    with pytest.raises(SourceError, match="101 bytes, larger than ingest.max_file_bytes = 100"):
        read_regular_file(tmp_path / "ok.txt", 100)


def test_non_utf8_names_have_an_escaped_display_form(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.md")
    with open(raw, "wb") as fh:
        fh.write(b"# Caf\n\nText about the caf.\n")
    [found] = discover([tmp_path], IngestConfig()).files
    assert display_path(found).endswith("/caf\\xe9.md") and load(found, IngestConfig()).documents[0].source.endswith(
        "caf\\xe9.md")


def test_write_json_atomic_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_control_characters_in_names_are_escaped_so_one_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "two\nlines.txt").write_text("text")
    [found] = discover([tmp_path], IngestConfig()).files
    assert display_path(found) == f"{tmp_path}/two\\x0alines.txt"
