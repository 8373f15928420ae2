"""A hostile-input corpus built here, ingested once with the real embedder; one assertion per case.

Each case must end as one clear line naming the file (a failure, a skip or a warning) while everything else is
ingested: FIFOs and devices, symlinks that leave the folder, file names that are not UTF-8, deep or odd HTML,
broken JSONL records, other encodings, a line of 900,000 characters without spaces, markup that must not reach
passages, and removal requests that would remove everything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from knowledge.config import PreprocessConfig
from knowledge.kb import KnowledgeBase
from knowledge.preprocess import Preprocessor
from pipelines.config import Settings
from pipelines.ingest import IngestPipeline
from pipelines.kb_admin import plan_removal, remove_sources
from rag.types import Block, Document

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _good(i: int) -> str:
    return json.dumps({"id": f"g{i}", "text": f"Good record {i} about the ferry timetable."})


def _write_corpus(root: Path) -> Path:
    docs, outside = root / "docs", root / "elsewhere"
    (docs / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nThe vault code is 4417 and it must stay private.\n")
    files = {
        "plain.txt": "Puffins nest on the northern cliffs of the island every spring.\n",
        "sub/real.md": "# Real\n\nThe mill grinds barley on Tuesdays.\n",
        "deep.html": "<html><body>" + "<div>" * 10_000 + "<p>Deep otters swim in the kelp forest.</p>"
                     + "</div>" * 10_000 + "</body></html>",
        "prolog.html": '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
                       "<title>Prolog page</title></head><body><p>Kestrels hover above the dunes.</p></body></html>",
        "mkdocs.md": "# Guide\n\n## Install { #install }\n\nRun the installer once.\n\n"
                     "{* ../../docs_src/app/main.py hl[3] *}\n\n<div class=\"note\"><b>Tip</b></div>\n\n"
                     "## Use {: .lead }\n\nPress <kbd>Enter</kbd> to start.\n<!-- hidden comment -->\n",
        "iframe.md": "# Video\n\n<iframe src=\"https://example.com/v\"></iframe>\n",
        "empty.md": "",
        "crlf.txt": "Line one about granite.\r\nLine two about moss.\r\n",
        "naïve café.md": "# Café\n\nThe café opens at seven.\n",
        "notes.docx": "not supported",
        "picture.png": "not supported",
        "style.css": "body {}",
        ".hidden.md": "# Hidden\n\nHidden text about lanterns.\n",
        "drafts/draft.md": "# Draft\n\nDraft text about glaze recipes.\n",
        "longline.txt": "".join(chr(ord("a") + (i * 7) % 26) for i in range(6_000)) + "\n",
    }
    for name, text in files.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    raw = {
        "utf16.txt": "\ufeffThe harbour light is green.".encode("utf-16-le"),
        "utf16be.txt": "\ufeffThe tide mill turns at dawn.".encode("utf-16-be"),
        "latin1.html": '<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head><body><p>'
                       "Le caf\xe9 du port sert du th\xe9 aux p\xeacheurs.</p></body></html>".encode("latin-1"),
        "binary.txt": b"\x00\x01\x02PNG\x00" * 50,
        "invalid.txt": "caf\xe9 au lait".encode("latin-1"),
        "broken.pdf": b"%PDF-1.4\n this is not a pdf",
        "big.txt": b"word " * 420_000,
        "records.jsonl": "\n".join([_good(1), _good(2),
                                    json.dumps({"id": "x" * 1_100_000, "text": "Huge id record."}),
                                    _good(3), "{broken", _good(4), '{"id": "s", "text": "\\ud800"}',
                                    "[" * 50_000 + "]" * 50_000, '{"id": ' + "9" * 5000 + ', "text": "big"}',
                                    _good(5), '{"id": "n", "text": 42}', _good(6),
                                    _good(7)]).encode(),
    }
    for name, data in raw.items():
        (docs / name).write_bytes(data)
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "wb") as fh:
        fh.write(b"A file whose name is not UTF-8 mentions lobster pots.\n")
    os.mkfifo(docs / "fifo.txt")
    os.symlink("/dev/zero", docs / "zero.txt")
    os.symlink("/etc/passwd", docs / "passwd.txt")
    os.symlink(outside / "secret.md", docs / "secret.md")
    os.symlink("..", docs / "up")
    os.symlink(docs / "sub", docs / "inner")  # stays inside: followed (its file found once)
    os.symlink(docs / "sub", docs / "sub" / "loop")
    os.symlink(docs / "gone.md", docs / "dangling.md")
    return docs


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, embedder) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("hostile")
    docs = _write_corpus(root)
    settings = Settings().override({"kb.path": str(root / "kb"), "ingest.show_progress": False,
                                    "ingest.max_file_bytes": 2_000_000})
    report = IngestPipeline.from_config(settings, embedder=embedder).run(
        [docs, docs / "zero.txt"], exclude=["*/drafts/*"])
    with KnowledgeBase.open(root / "kb") as kb:
        texts = {}
        for pid, text in kb.store.live_texts():
            passage = kb.store.get_passages([pid])[pid]
            texts.setdefault(Path(passage.source).name, []).append(passage)
        sources = {s.path for s in kb.store.sources()}
    failed = {Path(f["path"]).name: f["error"] for f in report.failed}
    skipped = {Path(s["path"]).name: s["reason"] for s in report.skipped}
    return SimpleNamespace(report=report, failed=failed, skipped=skipped, passages=texts, sources=sources,
                           settings=settings, docs=docs, warnings="\n".join(report.warnings))


def _all_text(h: SimpleNamespace) -> str:
    return "\n".join(p.text + " " + str(p.metadata.get("section", "")) for ps in h.passages.values() for p in ps)


CASES = {
    "fifo fails naming the file": lambda h: "FIFO" in h.failed.get("fifo.txt", ""),
    "/dev/zero named explicitly fails as a device": lambda h: "zero.txt: not a regular file but a character device" in h.failed.get("zero.txt", ""),
    "/dev/zero link inside a folder is skipped": lambda h: "outside the given folders" in h.skipped.get("zero.txt", ""),
    "/etc/passwd link is skipped": lambda h: "outside" in h.skipped.get("passwd.txt", ""),
    "/etc/passwd is never read": lambda h: "root:" not in _all_text(h),
    "link to a file elsewhere is skipped": lambda h: "outside" in h.skipped.get("secret.md", ""),
    "the secret behind the link stays out": lambda h: "4417" not in _all_text(h),
    "link to the parent folder is skipped": lambda h: "outside" in h.skipped.get("up", ""),
    "link inside the folder is followed once": lambda h: len(h.passages.get("real.md", [])) == 1,
    "symlink loop is cut": lambda h: sum(s.endswith("real.md") for s in h.sources) == 1,
    "dangling link fails clearly": lambda h: h.failed.get("dangling.md") == "broken symbolic link",
    "non-UTF-8 name is ingested": lambda h: "lobster pots" in " ".join(p.text for p in h.passages.get("caf\\xe9.txt", [])),
    "non-UTF-8 name is stored escaped": lambda h: any(s.endswith("/caf\\xe9.txt") for s in h.sources),
    "non-UTF-8 name gets one warning line": lambda h: "caf\\xe9.txt: file name is not valid UTF-8" in h.warnings,
    "10k-deep HTML keeps its text": lambda h: "Deep otters" in _all_text(h),
    "HTML with an XML prolog keeps its text": lambda h: "Kestrels hover" in _all_text(h),
    "declared latin-1 charset is honoured": lambda h: "Le café du port sert du thé" in _all_text(h),
    "UTF-16 LE with BOM is decoded": lambda h: "harbour light is green" in _all_text(h),
    "UTF-16 BE with BOM is decoded": lambda h: "tide mill turns" in _all_text(h),
    "JSONL keeps its 7 good records": lambda h: len(h.passages.get("records.jsonl", [])) == 7,
    "JSONL huge id fails its line only": lambda h: "records.jsonl: line 3:" in h.warnings,
    "JSONL broken line names file:line": lambda h: "records.jsonl: line 5: invalid JSON" in h.warnings,
    "JSONL lone surrogate fails its line": lambda h: "records.jsonl: line 7: invalid Unicode" in h.warnings,
    "JSONL 50k nested brackets fail their line": lambda h: "records.jsonl: line 8:" in h.warnings,
    "JSONL 5000-digit id fails its line": lambda h: "records.jsonl: line 9: invalid JSON" in h.warnings,
    "JSONL non-string text fails its line": lambda h: "records.jsonl: line 11: record has no 'text'" in h.warnings,
    "long line is split into many passages": lambda h: len(h.passages.get("longline.txt", [])) > 2,
    "long line passages respect the budget": lambda h: all(
        1 < p.n_tokens <= 224 for p in h.passages.get("longline.txt", [])),
    "MkDocs attribute lists leave sections": lambda h: {p.metadata.get("section") for p in h.passages["mkdocs.md"]}
    <= {"Install", "Use"},
    "MkDocs attribute lists leave text": lambda h: "{" not in " ".join(p.text for p in h.passages["mkdocs.md"]),
    "include directives leave passages": lambda h: "docs_src" not in _all_text(h),
    "HTML tags leave Markdown passages": lambda h: "<" not in " ".join(p.text for p in h.passages["mkdocs.md"]),
    "HTML comments leave passages": lambda h: "hidden comment" not in _all_text(h),
    "text inside inline HTML is kept": lambda h: "Press Enter to start." in _all_text(h),
    "heading-and-iframe file is a warning": lambda h: "iframe.md: no text found" in h.warnings,
    "heading-and-iframe file is not a failure": lambda h: "iframe.md" not in h.failed,
    "empty file is a warning, not a failure": lambda h: "empty.md" not in h.failed and "empty.md: file is empty" in h.warnings,
    "binary file fails": lambda h: "binary file" in h.failed.get("binary.txt", ""),
    "invalid UTF-8 fails with its offset": lambda h: "invalid UTF-8 at byte offset 3" in h.failed.get("invalid.txt", ""),
    "broken PDF fails": lambda h: "broken PDF" in h.failed.get("broken.pdf", ""),
    "file over max_file_bytes fails": lambda h: "max_file_bytes = 2,000,000" in h.failed.get("big.txt", ""),
    "unsupported types are skipped": lambda h: {"notes.docx", "picture.png", "style.css"} <= set(h.skipped),
    "hidden files are not read": lambda h: "lanterns" not in _all_text(h),
    "--exclude keeps drafts out": lambda h: "glaze recipes" not in _all_text(h),
    "CRLF text is ingested": lambda h: "granite" in _all_text(h),
    "non-ASCII UTF-8 names are plain": lambda h: any(s.endswith("/naïve café.md") for s in h.sources),
    "every failure is one line with its file": lambda h: all("\n" not in f["error"] and f["path"]
                                                             for f in h.report.failed),
    "the good files are all in": lambda h: {"plain.txt", "real.md", "crlf.txt", "prolog.html"} <= set(h.passages),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_case(hostile: SimpleNamespace, case: str) -> None:
    assert CASES[case](hostile), case


def test_remove_refuses_empty_path_and_root(hostile: SimpleNamespace) -> None:
    known = sorted(hostile.sources)
    for bad in ("", "  ", "/"):
        with pytest.raises(ValueError, match="every source"):
            plan_removal(known, [bad])


def test_remove_through_a_folder_needs_yes_and_dry_run_removes_nothing(hostile: SimpleNamespace) -> None:
    before = len(hostile.sources)
    dry = remove_sources(hostile.settings, [hostile.docs / "sub"], dry_run=True)
    refused = remove_sources(hostile.settings, [hostile.docs], confirmed=False)
    assert dry["removed"] == 0 and len(dry["would_remove"]) == 1  # one source under sub/: no --yes needed
    assert refused["removed"] == 0 and refused["needs_confirmation"] and len(refused["would_remove"]) > 1
    with KnowledgeBase.open(hostile.settings.kb.path) as kb:
        assert len(kb.store.sources()) == before


def test_a_900k_character_line_becomes_passages_of_real_token_sizes(embedder) -> None:
    pre = Preprocessor(PreprocessConfig(), embedder.count_tokens_batch)
    text = "".join(chr(ord("a") + (i * 7) % 26) for i in range(900_000))
    passages = pre.chunk(Document("d", "d", "Long", (Block(text),)))
    assert len(passages) > 100 and all(16 < p.n_tokens <= 224 for p in passages[:-1])
    recount = embedder.count_tokens_batch([pre.embedding_text(p) for p in passages[:5]])
    assert all(n > 100 for n in recount)  # the embedder really sees that many tokens, not one [UNK]
