"""The server's guards: API key on write endpoints, request size limit, upload names and server-path roots."""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

from pipelines.config import ServeConfig


def api_key(config: ServeConfig) -> str:
    """The configured key: ``serve.api_key``, else the ``RAG_API_KEY`` environment variable ('' = no key)."""
    return config.api_key or os.environ.get("RAG_API_KEY", "")


def require_key(request: Request) -> None:
    """Dependency of every write endpoint: ``Authorization: Bearer KEY`` (or ``X-API-Key``) when a key is set."""
    key = request.app.state.server.key
    if not key:
        return
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                            headers={"WWW-Authenticate": "Bearer"})


class BodyLimit(BaseHTTPMiddleware):
    """Refuses bodies over ``limit`` bytes with 413, by Content-Length and by counting a chunked body."""

    def __init__(self, app, limit: int) -> None:  # noqa: ANN001 - an ASGI app
        super().__init__(app)
        self.limit = limit

    async def dispatch(self, request: Request, call_next):  # noqa: ANN201
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return _too_large(self.limit)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.limit:
                    return _too_large(self.limit)
            request._body = body  # starlette reads the cached body downstream
        return await call_next(request)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over serve.max_request_bytes = {limit} bytes"}, status_code=413)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """A plain file name from an uploaded one: no folders, no leading dots, only ``[A-Za-z0-9._-]``."""
    base = re.split(r"[\\/]", name or "")[-1]
    clean = _UNSAFE.sub("_", base).lstrip(".")[:120]
    if not clean or clean.strip("_") == "":
        raise ValueError(f"upload file name {name!r} has no usable characters")
    return clean


def confine(path: str, roots: list[str]) -> Path:
    """Resolve a server path and require it inside one of ``serve.ingest_roots`` (symlinks resolved first)."""
    if not roots:
        raise PermissionError("server paths are disabled: set serve.ingest_roots, or upload the files instead")
    target = Path(path).expanduser().resolve()
    for root in roots:
        if target.is_relative_to(Path(root).expanduser().resolve()):
            return target
    raise PermissionError(f"{path} is outside serve.ingest_roots {roots}")
