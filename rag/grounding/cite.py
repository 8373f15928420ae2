"""Citation markers: parse ``[n]`` markers in an answer and resolve them to the passages given as context.

Accepted forms: ``[1]``, ``[1, 2]``, ``[1][3]``, ``[1-3]`` (also with an en dash), ``[1,3-4]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

from rag.types import Citation, Hit, Passage

Label = Callable[[Passage], str]

_MARKER = re.compile(r"\[\s*(\d+(?:\s*[-–]\s*\d+)?(?:\s*,\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]")
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
MAX_RANGE = 50  # "[1-999999]" is not a citation list worth expanding


def parse_markers(text: str) -> list[int]:
    """Every marker number in order of appearance (repeats kept); ranges are expanded.

    Example:
        >>> parse_markers("Aspirin helps [1, 2] but not always [4-5][2].")
        [1, 2, 4, 5, 2]
    """
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        for part in match.group(1).split(","):
            numbers.extend(_expand(part.strip()))
    return numbers


def cited_markers(text: str) -> list[int]:
    """The distinct marker numbers of an answer, in order of first appearance (ranges expanded)."""
    return list(dict.fromkeys(parse_markers(text)))


def passage_label(passage: Passage, root: str | None = None) -> str:
    """Where a passage is, for people: the source path relative to ``root`` (the ingest root) plus page/section.

    Example:
        >>> passage_label(Passage("p", "t", "/docs/a/index.md", "/docs/a/index.md", metadata={"section": "CORS"}),
        ...               "/docs")
        'a/index.md § CORS'
    """
    path, _, record = passage.doc_id.partition("#")
    if root and os.path.isabs(path) and (path == root or path.startswith(root.rstrip(os.sep) + os.sep)):
        path = os.path.relpath(path, root)
    where = path.replace("\\", "/") + (f"#{record}" if record else "")
    if passage.metadata.get("page") is not None:
        where += f" p. {passage.metadata['page']}"
    if passage.metadata.get("section"):
        where += f" § {passage.metadata['section']}"
    return where


def _expand(part: str) -> list[int]:
    span = _RANGE.fullmatch(part)
    if span is None:
        return [int(part)]
    first, last = int(span.group(1)), int(span.group(2))
    if first > last or last - first >= MAX_RANGE:
        return [first, last]
    return list(range(first, last + 1))


def resolve_citations(answer_text: str, context: Sequence[Hit], label: Label | None = None
                      ) -> tuple[tuple[Citation, ...], tuple[int, ...]]:
    """Valid citations (unique, by first appearance) and the invalid markers (outside ``1..len(context)``).

    Marker ``[n]`` refers to ``context[n - 1]``, the n-th passage injected into the prompt. The citations are of
    kind ``supported`` until a support check (``rag.grounding.attribute.ground_citations``) says otherwise.
    """
    label = label or passage_label
    citations: list[Citation] = []
    invalid: list[int] = []
    seen: set[int] = set()
    for n in parse_markers(answer_text):
        if n in seen:
            continue
        seen.add(n)
        if not 1 <= n <= len(context):
            invalid.append(n)
            continue
        hit = context[n - 1]
        citations.append(
            Citation(marker=n, passage_id=hit.passage.id, source=hit.passage.source,
                     location=label(hit.passage), score=hit.score)
        )
    return tuple(citations), tuple(invalid)
