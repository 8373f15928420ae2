"""Discovery and loading of each source format, and the documented errors for hostile inputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from knowledge.config import IngestConfig
from knowledge.sources import discover, load
from rag.errors import SourceError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"
SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact" / "corpus.jsonl"
CONFIG = IngestConfig()


def _one(path: Path, config: IngestConfig = CONFIG):
    result = load(path, config)
    assert len(result.documents) == 1
    return result.documents[0]


# ---- discovery ------------------------------------------------------------------------------------------------


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("# A\n\ntext")
    (tmp_path / "docs" / "sub" / "b.txt").write_text("text")
    (tmp_path / "docs" / "sub" / "c.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / "docs" / ".hidden.md").write_text("secret")
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / ".git" / "x.txt").write_text("git internals")
    return tmp_path / "docs"


def test_discover_folder_recurses_skips_hidden_and_reports_unsupported(tmp_path: Path) -> None:
    found = discover([_tree(tmp_path)], CONFIG)
    assert [f.name for f in found.files] == ["a.md", "b.txt"]
    assert all(f.is_absolute() for f in found.files)
    assert found.skipped == [(str(tmp_path / "docs" / "sub" / "c.docx"), "unsupported type '.docx'")]
    assert found.failed == []


def test_discover_honours_exclude_and_include(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert [f.name for f in discover([root], IngestConfig(exclude=["sub"])).files] == ["a.md"]
    only_md = discover([root], IngestConfig(include=["*.md"]))
    assert [f.name for f in only_md.files] == ["a.md"]
    assert {Path(p).name for p, _ in only_md.skipped} == {"b.txt", "c.docx"}


def test_discover_glob_dedupes_and_missing_path_is_a_failure(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    found = discover([f"{root}/**/*.txt", root / "sub" / "b.txt", root / "nope.md", f"{root}/*.pdf"], CONFIG)
    assert [f.name for f in found.files] == ["b.txt"]
    assert (str(root / "nope.md"), "path does not exist") in found.failed
    assert (f"{root}/*.pdf", "no files match the pattern") in found.failed


def test_discover_survives_symlink_loop_and_broken_link(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.symlink(root, root / "sub" / "loop")  # sub/loop -> docs: a cycle
    os.symlink(root / "gone.txt", root / "dangling.txt")
    found = discover([root], CONFIG)
    assert sorted(f.name for f in found.files) == ["a.md", "b.txt"]  # each file once, real paths
    assert (str(root / "dangling.txt"), "broken symbolic link") in found.failed


def test_glob_with_two_symlink_loops_finds_each_file_once(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    os.symlink(root, root / "sub" / "loop1")
    os.symlink(root, root / "sub" / "loop2")  # glob.glob would expand 2**40 paths here
    start = time.perf_counter()
    found = discover([f"{root}/**/*.md", f"{root}/s?b", f"{root}/[!s]*.md"], CONFIG)
    assert time.perf_counter() - start < 2.0
    assert [f.name for f in found.files] == ["a.md", "b.txt"]  # s?b matches the folder: its files are taken
    assert found.skipped == [(str(root / "sub" / "c.docx"), "unsupported type '.docx'")] and found.failed == []


def test_discover_explicit_unsupported_file_is_skipped(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    found = discover([root / "sub" / "c.docx"], CONFIG)
    assert found.files == [] and found.skipped[0][1] == "unsupported type '.docx'"


# ---- formats ------------------------------------------------------------------------------------------------


def test_txt_title_is_first_line_and_ids_are_resolved_paths() -> None:
    doc = _one(FIXTURES / "notes.txt")
    assert doc.title == "Field notes from the harbour"
    assert doc.doc_id == doc.source == str((FIXTURES / "notes.txt").resolve())
    assert "rated for 35 tonnes" in doc.text and doc.metadata["format"] == "txt"


def test_txt_with_a_long_first_line_is_titled_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "memo.txt"
    path.write_text("word " * 60 + "\n\nsecond paragraph")
    assert _one(path).title == "memo"


def test_markdown_sections_are_heading_paths_and_syntax_is_stripped() -> None:
    doc = _one(FIXTURES / "guide.md")
    assert doc.title == "Operator Guide"
    sections = [b.section for b in doc.blocks]
    assert sections == [None, "Install > Linux", "Install > Windows", "Support"]  # empty sections dropped
    assert doc.blocks[0].text == "Read the whole guide before starting. See the FAQ for more."
    linux = doc.blocks[1].text
    assert "# this comment is not a heading" in linux and "install.sh" in linux and "`" not in linux
    assert doc.blocks[2].text == "Double-click setup.exe and follow the wizard."


def test_html_main_text_with_sections_and_title() -> None:
    doc = _one(FIXTURES / "page.html")
    assert doc.title == "Reactor Maintenance Log"
    assert "coolant pump" in doc.text and "Corrosion" in doc.text
    assert "console.log" not in doc.text and "Internal use only" not in doc.text
    assert [b.section for b in doc.blocks if "Corrosion" in b.text] == ["Findings"]


def test_html_without_main_text_falls_back_to_all_text() -> None:
    doc = _one(FIXTURES / "bare.html")
    assert doc.title == "Bare Page" and doc.text.strip() == "Kestrel"


def test_pdf_gives_one_block_per_page() -> None:
    doc = _one(FIXTURES / "two_pages.pdf")
    assert doc.title == "Fixture Report" and doc.metadata["format"] == "pdf"
    assert [b.page for b in doc.blocks] == [1, 2]
    assert "alpha reactor" in doc.blocks[0].text and "beta reactor" in doc.blocks[1].text


def test_jsonl_generic_rows_metadata_and_warnings_with_line_numbers() -> None:
    path = (FIXTURES / "records.jsonl").resolve()
    result = load(path, CONFIG)
    ids = [d.doc_id for d in result.documents]
    assert ids == [f"{path}#r1", f"{path}#r2", f"{path}#r6"]
    first, second, third = result.documents
    assert first.title == "First record" and first.source == str(path)
    assert first.metadata == {"tags": ["fruit", "food"], "date": "2024-02-01", "format": "jsonl"}
    assert second.metadata["tags"] == ["fruit"]
    assert "date" not in third.metadata
    warnings = "\n".join(result.warnings)
    assert "line 3: invalid JSON" in warnings
    assert "line 4: record has no 'text'" in warnings
    assert "line 5: duplicate id 'r1'" in warnings
    assert "line 7: date 'yesterday' is not an ISO date" in warnings
    assert len(result.warnings) == 4


def test_jsonl_beir_rows_use_underscore_id() -> None:
    docs = load(FIXTURES / "beir.jsonl", CONFIG).documents
    assert [d.doc_id.rsplit("#", 1)[1] for d in docs] == ["4983", "5836"]
    assert docs[1].title == "Induction of myelodysplasia"
    assert docs[1].text == "Myelodysplastic syndromes are a group of clonal disorders."


@pytest.mark.skipif(not SCIFACT.exists(), reason="shared SciFact data not present")
def test_scifact_corpus_loads_fast() -> None:
    start = time.perf_counter()
    result = load(SCIFACT, CONFIG)
    assert time.perf_counter() - start < 2.0
    assert len(result.documents) == 5183 and result.warnings == []


def test_sample_corpus_loads_every_file_with_the_velmora_fact() -> None:
    found = discover([SAMPLE], CONFIG)
    assert found.skipped == [] and found.failed == []
    formats = {f.suffix for f in found.files}
    assert {".md", ".txt", ".html", ".pdf", ".jsonl"} <= formats
    docs = [d for f in found.files for d in load(f, CONFIG).documents]
    assert len(docs) >= 12
    kiln = [b for d in docs for b in d.blocks if "The Velmora kiln reaches 1,340 °C" in b.text]
    assert len(kiln) == 1 and kiln[0].section == "The Kiln"
    news = [d for d in docs if d.metadata["format"] == "jsonl"]
    assert all(d.metadata["tags"] and d.metadata["date"] for d in news)


# ---- hostile inputs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("blob.txt", b"abc\x00\x01\x02def", "binary file"),
        ("latin.txt", "café".encode("latin-1"), "invalid UTF-8 at byte offset 3"),
        ("bad.pdf", b"%PDF-1.4\n this is not a pdf", "broken PDF"),
        ("garbage.jsonl", b"not json\n[1, 2]\n", "no usable records"),
    ],
)
def test_hostile_files_raise_one_line_source_error_naming_the_file(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceError) as info:
        load(path, CONFIG)
    text = str(info.value)
    assert message in text and str(path.resolve()) in text and "\n" not in text


@pytest.mark.parametrize(
    ("name", "data", "warning"),
    [
        ("empty.md", b"", "file is empty"),
        ("blank.txt", b"  \n\n \t\n", "file is empty"),
        ("headings.md", b"# Only\n\n## Headings\n", "no text found"),
        ("iframe.md", b"# Video\n\n<iframe src='https://example.com/v'></iframe>\n", "no text found"),
    ],
)
def test_a_file_without_text_is_a_warning_not_an_error(tmp_path: Path, name: str, data: bytes, warning: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = load(path, CONFIG)
    assert result.documents == [] and len(result.warnings) == 1 and warning in result.warnings[0]


def test_huge_line_and_huge_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("short line\n" + "x" * 5000 + "\n")
    with pytest.raises(SourceError, match="line 2 has 5,000 characters"):
        load(path, IngestConfig(max_line_chars=1000))
    with pytest.raises(SourceError, match="larger than ingest.max_file_bytes = 1,000"):
        load(path, IngestConfig(max_file_bytes=1000))


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(FIXTURES / "two_pages.pdf"))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(SourceError, match="encrypted"):
        load(path, CONFIG)


def test_jsonl_keeps_going_after_a_bad_line(tmp_path: Path) -> None:
    rows = [json.dumps({"id": i, "text": f"row {i}"}) for i in range(5)]
    rows[2] = '{"id": 2, "text": '
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(rows))
    result = load(path, CONFIG)
    assert [d.text for d in result.documents] == ["row 0", "row 1", "row 3", "row 4"]
    assert result.warnings == ["line 3: invalid JSON (Expecting value) — skipped"]
