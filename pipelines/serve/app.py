"""The FastAPI application: routers, guards, error mapping, the web page at ``/`` and OpenAPI docs at ``/docs``."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from pipelines.config import Settings
from pipelines.serve import admin, api
from pipelines.serve.security import BodyLimit
from pipelines.serve.state import ServerState
from rag.errors import EmptyKnowledgeBaseError, RagError

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, config_path: str | None = None, preload: bool = False) -> FastAPI:
    """The app over ``settings.kb.path``; with ``preload`` the models load at startup instead of the first ask."""
    state = ServerState(settings, config_path)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        if preload:
            try:
                warm_up = getattr(state.qa.generator, "warm_up", None)  # a server backend has nothing to load
                if warm_up is not None:
                    warm_up()  # load both models now, not at the first ask
                state.embedder().model  # noqa: B018
            except EmptyKnowledgeBaseError:
                pass  # the first ingest fills it; asks say so until then
        yield
        state.close()

    app = FastAPI(title="rag-knowledge", version="0.1.0", lifespan=lifespan,
                  description="Ask your knowledge base with citations; ingest, feedback, stats and adapters.")
    app.state.server = state
    app.add_middleware(BodyLimit, limit=settings.serve.max_request_bytes)
    app.include_router(api.router)
    app.include_router(admin.router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(PermissionError, _forbidden)
    app.add_exception_handler(FileNotFoundError, _not_found)
    app.add_exception_handler(ValueError, _bad_value)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="Liveness: 200 while the server runs")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "model": state.backend()}

    return app


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 whose ``detail`` lists each bad field, and ``error`` says the first one in a line."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request"}
    field = ".".join(str(p) for p in first["loc"][1:]) or "body"
    return JSONResponse({"detail": errors, "error": f"{field}: {first['msg']}"}, status_code=422)


async def _rag_error(_: Request, exc: RagError) -> JSONResponse:
    status = 409 if isinstance(exc, EmptyKnowledgeBaseError) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _forbidden(_: Request, exc: PermissionError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


async def _bad_value(_: Request, exc: ValueError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _not_found(_: Request, exc: FileNotFoundError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)
