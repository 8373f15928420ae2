"""`rag serve`: the HTTP API (FastAPI) and the web page over one shared QA pipeline.

Example:
    >>> from pipelines.serve import create_app
    >>> app = create_app(Settings())          # then: uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

from pipelines.serve.app import create_app

__all__ = ["create_app"]
