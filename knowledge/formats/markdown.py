"""Markdown to sections with markdown-it-py (CommonMark + tables): headings become section paths, the rest text.

Markup never reaches passages: inline and block HTML tags are dropped (their text kept), links keep their text,
images their alt text, code its content. A table row, pipe or HTML, becomes one line, its cells joined by " | ", so
a row stays one sentence whose first cell names what it is about ("PRIORITY_HIGHEST | The highest ...").
MkDocs attribute lists (``{ #anchor }``, ``{: .class }``) and include directives (``{* docs_src/app.py hl[3] *}``,
``{!> file.md !}``) are removed.

Example:
    >>> doc = markdown_document("guide.md", "guide", "# Guide\\n\\n## Install { #install }\\n\\nRun it.")
    >>> [(b.section, b.text) for b in doc.blocks]
    [('Install', 'Run it.')]
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from functools import lru_cache

from knowledge.formats.common import document
from rag.types import Block, Document

_ATTR_LIST = re.compile(r"\{:?\s*[#.:][^{}\n]*\}")  # { #anchor }, {: .class }, { .a #b key=v }
_INCLUDE = re.compile(r"\{\*.*?\*\}|\{!.*?!\}", re.DOTALL)  # {* docs_src/x.py *}, {!> file.md !}
_TAG = re.compile(r"<[^>]*>")
_BLOCK_CLOSE = {"paragraph_close", "bullet_list_close", "ordered_list_close", "blockquote_close", "table_close"}
_ROW_END = re.compile(r"</tr\s*>", re.IGNORECASE)
_CELL_GAP = re.compile(r"</t[dh]\s*>\s*(?=<t[dh][\s>])", re.IGNORECASE)  # between two cells of a row


@lru_cache(maxsize=1)
def _parser():  # noqa: ANN202 - markdown_it.MarkdownIt
    from markdown_it import MarkdownIt  # noqa: PLC0415 - only needed for Markdown and HTML

    return MarkdownIt("commonmark").enable("table")


def clean(text: str) -> str:
    """Remove MkDocs attribute lists and include directives, and HTML tags, from a piece of text."""
    return _TAG.sub("", _ATTR_LIST.sub("", _INCLUDE.sub("", text)))


def sections(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Yield ``(level, heading, body lines)``; level 0 is the text before the first heading."""
    level, heading, body = 0, "", []
    tokens = _parser().parse(_INCLUDE.sub("", text))
    row: list[str] | None = None  # the cells of the table row being read
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            yield level, heading, body
            level, heading, body = int(tok.tag[1]), " ".join(_inline(tokens[i + 1]).split()), []
            i += 3
            continue
        if tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and row is not None:
            body += [" | ".join(cell for cell in row if cell), ""]
            row = None
        elif tok.type == "inline" and row is not None:
            row.append(" ".join(_inline(tok).split()))
        elif tok.type == "inline":
            body.append(_inline(tok))
        elif tok.type in ("fence", "code_block"):
            # a code block is a paragraph of its own: the prose after it must not start on its last line ("< > ` {
            # } |\nFor example, the ASCII space character is encoded as %20." read as one sentence)
            body += [tok.content.rstrip("\n"), ""]
        elif tok.type == "html_block":
            table = "<tr" in tok.content.lower()
            body += ["", _html_text(tok.content), ""] if table else [_html_text(tok.content)]
        elif tok.type in _BLOCK_CLOSE or tok.type == "table_open":
            body.append("")  # a paragraph break between blocks
        i += 1
    yield level, heading, body


def _html_text(block: str) -> str:
    """Text of an HTML block, its lines kept; a table's rows one line each, cells joined by " | "."""
    if "<tr" not in block.lower():
        lines = html.unescape(_TAG.sub(" ", block)).splitlines()
        return "\n".join(" ".join(line.split()) for line in lines).strip()
    rows = (" ".join(html.unescape(_TAG.sub(" ", r)).split()) for r in _ROW_END.split(_CELL_GAP.sub(" | ", block)))
    return "\n\n".join(r.strip(" |") for r in rows if r.strip(" |"))


def _inline(token) -> str:  # noqa: ANN001 - markdown_it.token.Token
    """Plain text of an inline token: text, code, link text and image alt text; HTML tags dropped."""
    out = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif child.type == "image":
            out.append(child.content)
    return _ATTR_LIST.sub("", "".join(out)).strip()


def markdown_document(source: str, stem: str, text: str, fmt: str = "md", title: str | None = None) -> Document:
    """One document whose blocks are the Markdown sections (section = heading path, e.g. ``Install > Linux``)."""
    found = list(sections(text))
    h1s = [h for level, h, _ in found if level == 1]
    # a lone leading H1 is the document title, not a section: "Install > Linux", not "Guide > Install > Linux"
    title_h1 = len(h1s) == 1 and len(found) > 1 and found[1][0] == 1
    stack: list[tuple[int, str]] = []
    blocks = []
    for level, heading, body in found:
        if level:
            stack = [(lv, h) for lv, h in stack if lv < level] + [(level, heading)]
        path_parts = [h for lv, h in stack if not (title_h1 and lv == 1) and h]
        blocks.append(Block(_join(body), section=" > ".join(path_parts) or None))
    return document(source, title or next((h for h in h1s if h), stem), blocks, fmt)


def _join(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
