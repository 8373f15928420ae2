"""Loaders per source format: each turns a file's bytes into ``Document``s (or raises ``SourceError``).

``text`` decodes bytes (BOMs, declared charsets), ``markdown`` parses Markdown with markdown-it-py (also used for
the main text of HTML pages, which trafilatura gives as Markdown), ``html``, ``pdf`` and ``jsonl`` load their
formats. ``knowledge.sources`` finds files and picks the loader.
"""
