"""Knowledge-base endpoints: ingest (server paths or uploads) as jobs, status, stats, adapters, distillation."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pipelines.serve.schemas import IngestRequest
from pipelines.serve.security import confine, require_key, safe_filename
from pipelines.serve.state import ServerState

router = APIRouter(prefix="/v1")

_INGEST_DOC = {"requestBody": {"content": {
    "application/json": {"schema": IngestRequest.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "wait_seconds": {"type": "number"}}}}}}}


def _state(request: Request) -> ServerState:
    return request.app.state.server


@router.post("/ingest", summary="Ingest server paths (JSON) or uploaded files (multipart) as a job",
             dependencies=[Depends(require_key)], openapi_extra=_INGEST_DOC)
async def ingest(request: Request) -> Any:
    state = _state(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        paths, prune = await _save_uploads(state, request), False
        wait = _seconds((await request.form()).get("wait_seconds"))
    else:
        body = _ingest_body(await request.body())
        paths = [str(confine(p, state.settings.serve.ingest_roots)) for p in body.paths]
        prune, wait = body.prune, body.wait_seconds
    job = state.jobs.submit("ingest", lambda: _run_ingest(state, paths, prune))
    job = await run_in_threadpool(state.jobs.wait, job.id, wait)
    if job.status in ("done", "failed"):
        return job.to_dict()
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


def _seconds(value: Any) -> float:
    try:
        seconds = float(value if value not in (None, "") else 10.0)
    except (TypeError, ValueError):
        raise HTTPException(422, f"wait_seconds: not a number: {value!r}") from None
    if not 0 <= seconds <= 600:
        raise HTTPException(422, "wait_seconds: must be between 0 and 600")
    return seconds


def _ingest_body(raw: bytes) -> IngestRequest:
    try:
        return IngestRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise HTTPException(422, [{"loc": ["body", *first["loc"]], "msg": f"{field}: {first['msg']}",
                                   "type": first["type"]}]) from None


async def _save_uploads(state: ServerState, request: Request) -> list[str]:
    """Write uploaded files under the upload folder with sanitised names (same name = same source, updated)."""
    form = await request.form()
    uploads = [f for f in form.getlist("files") if hasattr(f, "filename")]
    if not uploads:
        raise HTTPException(422, [{"loc": ["body", "files"], "msg": "files: no file uploaded", "type": "missing"}])
    folder = Path(state.settings.serve.upload_dir or Path(state.settings.kb.path) / "uploads").expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for upload in uploads:
        try:
            name = safe_filename(upload.filename or "")
        except ValueError as exc:
            raise HTTPException(422, f"files: {exc}") from None
        tmp = folder / f".{name}.part"
        tmp.write_bytes(await upload.read())
        os.replace(tmp, folder / name)
        paths.append(str(folder / name))
    return paths


def _run_ingest(state: ServerState, paths: list[str], prune: bool) -> dict[str, Any]:
    from pipelines.ingest import IngestPipeline

    settings = state.settings.override({"ingest.show_progress": False})
    report = IngestPipeline(settings, embedder=state.embedder()).run(paths, prune=prune)
    return report.to_dict()


@router.get("/jobs/{job_id}", summary="State and result of a background job")
async def job(job_id: str, request: Request) -> dict[str, Any]:
    found = _state(request).jobs.get(job_id)
    if found is None:
        raise HTTPException(404, f"job_id: no job {job_id!r} (jobs are kept in memory until the server restarts)")
    return found.to_dict()


@router.get("/jobs", summary="Recent background jobs")
async def jobs(request: Request) -> list[dict[str, Any]]:
    return [j.to_dict() for j in _state(request).jobs.list()]


@router.get("/status", summary="Knowledge-base counts, index, memory estimate and the loaded model")
async def status(request: Request) -> dict[str, Any]:
    from pipelines.kb_admin import status as kb_status

    state = _state(request)
    info = await run_in_threadpool(kb_status, state.settings)
    running = [j.id for j in state.jobs.list() if j.status in ("queued", "running")]
    return info | {"model": state.backend(), "jobs_running": running}


@router.get("/stats", summary="Most retrieved passages, with time-decayed counts")
async def stats(request: Request, limit: int = 10) -> dict[str, Any]:
    if not 0 < limit <= 1000:
        raise HTTPException(422, "limit: must be between 1 and 1000")
    return await run_in_threadpool(_stats, _state(request), limit)


def _stats(state: ServerState, limit: int) -> dict[str, Any]:
    from knowledge.kb import KnowledgeBase
    from knowledge.log import RetrievalLog

    settings = state.settings
    with KnowledgeBase.open(settings.kb.path) as kb:
        usage = RetrievalLog(kb.store, settings.log).usage(time.time(), limit)
        passages = kb.store.get_passages([u.passage_id for u in usage])
        asks = RetrievalLog(kb.store, settings.log).asks_since(0.0)
    rows = []
    for u in usage:
        p = passages.get(u.passage_id)
        rows.append({"passage_id": u.passage_id, "decayed_hits": round(u.hits, 4), "decayed_cited": round(u.cited, 4),
                     "hits": u.total_hits, "cited": u.total_cited, "location": p.location if p else "(removed)",
                     "source": p.source if p else None, "text": p.text if p else None})
    return {"asks": asks, "half_life_days": settings.log.half_life_days, "passages": rows}


@router.get("/adapters", summary="Adapter history: every distilled adapter, its gate result and which is active")
async def adapters(request: Request) -> list[dict[str, Any]]:
    from knowledge.distill.adapters import AdapterRegistry

    registry = AdapterRegistry(_state(request).settings.kb.path)
    return [{k: m.get(k) for k in ("id", "active", "promoted", "created", "parent", "reason")}
            | {"passages": len(m.get("passages", {}))} for m in registry.list()]


@router.post("/adapters/rollback", summary="Re-activate the previous adapter (or the base model)",
             dependencies=[Depends(require_key)])
async def rollback(request: Request) -> dict[str, Any]:
    from knowledge.distill.adapters import AdapterRegistry

    state = _state(request)
    active = await run_in_threadpool(_switch, state, lambda: AdapterRegistry(state.settings.kb.path).rollback())
    return {"active": active}


@router.post("/adapters/{adapter_id}/activate", summary="Make an adapter active and load it",
             dependencies=[Depends(require_key)])
async def activate(adapter_id: str, request: Request) -> dict[str, Any]:
    from knowledge.distill.adapters import AdapterRegistry

    state = _state(request)
    await run_in_threadpool(_switch, state, lambda: AdapterRegistry(state.settings.kb.path).activate(adapter_id))
    return {"active": adapter_id}


def _switch(state: ServerState, change: Any) -> Any:
    with state.lock:  # no ask runs while the model is swapped
        try:
            result = change()
        except ValueError as exc:
            raise HTTPException(404 if "no adapter" in str(exc) else 409, str(exc)) from None
        state.reload_model()
        return result


@router.post("/distill", summary="Start a distillation round as a background job",
             dependencies=[Depends(require_key)], status_code=202)
async def distill(request: Request) -> dict[str, Any]:
    state = _state(request)
    return state.jobs.submit("distill", state.run_distill).to_dict()
