"""The project's error tree.

Caller mistakes raise ``ValueError``/``TypeError``; everything else raises a ``RagError`` subclass so the CLI
can turn it into one clear line and a non-zero exit.
"""


class RagError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(RagError):
    """A configuration file or value is invalid; the message names the key, the value and the file."""


class ModelLoadError(RagError):
    """A model (embedder or LLM) could not be found or loaded."""


class KnowledgeBaseError(RagError):
    """The knowledge base folder is missing, empty, locked or damaged."""


class EmptyKnowledgeBaseError(KnowledgeBaseError):
    """The knowledge base has no passages yet (run `rag ingest` first)."""


class IndexMismatchError(KnowledgeBaseError):
    """The knowledge base was built with another embedding model or settings than the ones configured."""


class SourceError(RagError):
    """One source could not be read or parsed; ingest reports it and goes on with the others."""


class ContextOverflowError(RagError):
    """The prompt cannot fit in the model's context window (e.g. the question alone is too long)."""

