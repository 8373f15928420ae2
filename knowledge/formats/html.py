"""HTML pages: the main text via trafilatura (as Markdown, so headings become sections), with two fallbacks.

When trafilatura finds no main text (a page of bare divs) every visible text node is taken; when lxml cannot
build a tree at all (10,000 nested elements, beyond libxml2's depth limit) a streaming ``html.parser`` pass
collects the text without building one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from knowledge.formats.common import document, short
from knowledge.formats.markdown import markdown_document
from rag.types import Block, Document

_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_SKIP = {"script", "style", "noscript", "template", "title"}
_BREAKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre",
           "blockquote", "table", "ul", "ol"}


def load_html(source: str, stem: str, page: str) -> Document:
    """The page's main text with its sections; the title from its metadata or the file's stem."""
    import trafilatura  # noqa: PLC0415 - heavy import, only needed for HTML

    page = _PROLOG.sub("", page, count=1)  # lxml refuses str input that declares an encoding
    meta = _quiet(lambda: trafilatura.extract_metadata(page))
    title = short(meta.title if meta and meta.title else "") or _html_title(page) or stem
    main = _quiet(lambda: trafilatura.extract(page, output_format="markdown", include_formatting=True,
                                              favor_recall=True, include_comments=False))
    if main and main.strip():
        return markdown_document(source, stem, main, "html", title=title)
    text = _quiet(lambda: trafilatura.html2txt(page)) or ""
    if not text.strip():
        text = stream_text(page)
    return document(source, title, [Block(text)], "html")


def _quiet(call):  # noqa: ANN001, ANN202 - any lxml failure means "no result" here
    try:
        return call()
    except Exception:  # noqa: BLE001 - lxml/trafilatura raise many types on hostile markup
        return None


def _html_title(page: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", page[:65536], re.IGNORECASE | re.DOTALL)
    return short(" ".join(match.group(1).split())) if match else None


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def stream_text(page: str) -> str:
    """Visible text of any HTML, however deeply nested (no tree is built)."""
    parser = _TextParser()
    parser.feed(page)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
