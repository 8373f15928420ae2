"""Question answering over HTTP: POST /v1/ask (JSON or Server-Sent Events), POST /v1/chat/completions
(OpenAI-compatible, citations in an extra field) and POST /v1/feedback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from pipelines.serve.schemas import AskRequest, ChatRequest, FeedbackRequest
from pipelines.serve.security import require_key
from pipelines.serve.state import ServerState
from rag.types import Answer, Filters

router = APIRouter(prefix="/v1")


def answer_json(answer: Answer) -> dict[str, Any]:
    """The one serialisation of an Answer (shared with ``rag ask --json``)."""
    from pipelines.cli.qa import answer_dict

    return answer_dict(answer)


def _state(request: Request) -> ServerState:
    return request.app.state.server


def _check_question(state: ServerState, question: str) -> None:
    limit = state.settings.serve.max_question_chars
    if len(question) > limit:
        raise HTTPException(422, f"question: longer than serve.max_question_chars = {limit}")
    if not question.strip():
        raise HTTPException(422, "question: empty")


def _locked(state: ServerState, work: Callable[[], Any]) -> Any:
    with state.lock:
        return work()


def _produce(state: ServerState, start: Callable[[], Any]) -> asyncio.Queue:
    """Run a streaming answer in a thread that holds the generation lock to the end, whatever the client does;
    pieces arrive on the returned queue as ("token", text), then ("answer", Answer) or ("error", message)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def put(item: tuple[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        with state.lock:
            try:
                stream = start()
                for piece in stream:
                    put(("token", piece))
                put(("answer", stream.answer))
            except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
                put(("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))

    threading.Thread(target=work, daemon=True, name="answer-stream").start()
    return queue


@router.post("/ask", summary="Answer a question with citations (SSE when stream is true)")
async def ask(body: AskRequest, request: Request) -> Any:
    state = _state(request)
    _check_question(state, body.question)
    filters = Filters(body.source, tuple(body.tags), body.date_from, body.date_to)
    args = {"k": body.k, "filters": filters, "retrieval": body.retrieval}
    if not body.stream:
        answer = await run_in_threadpool(_locked, state, lambda: state.qa.ask(body.question, **args))
        return answer_json(answer)
    queue = _produce(state, lambda: state.qa.ask_stream(body.question, **args))

    async def events() -> AsyncIterator[dict[str, str]]:
        while True:
            kind, value = await queue.get()
            if kind == "token":
                yield {"event": "token", "data": json.dumps({"text": value}, ensure_ascii=False)}
                continue
            data = answer_json(value) if kind == "answer" else {"detail": value}
            yield {"event": kind, "data": json.dumps(data, ensure_ascii=False, default=str)}
            return

    return EventSourceResponse(events())


@router.post("/feedback", summary="Mark an answer good or bad, optionally with a correction",
             dependencies=[Depends(require_key)])
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    state = _state(request)
    try:
        await run_in_threadpool(_locked, state, lambda: state.qa.feedback(body.answer_id, body.good, body.correction))
    except (KeyError, ValueError) as exc:
        raise HTTPException(404, f"answer_id: {exc}") from None
    return {"answer_id": body.answer_id, "good": body.good, "stored": True}


# ---- OpenAI-compatible chat ------------------------------------------------------------------------------------


def _conversation(body: ChatRequest) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and earlier (user, assistant) pairs as history."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not (turns[-1].content or "").strip():
        raise HTTPException(422, "messages: the last message must be a non-empty 'user' message")
    history, pending = [], None
    for m in turns[:-1]:
        if m.role == "user":
            pending = m.content or ""
        elif pending is not None:
            history.append((pending, m.content or ""))
            pending = None
    return turns[-1].content or "", history


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    tokens = dict(answer.tokens)
    usage = {"prompt_tokens": tokens.get("prompt", 0), "completion_tokens": tokens.get("completion", 0)}
    data = answer_json(answer)
    return {"id": f"chatcmpl-{answer.id}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": "stop"}],
            "usage": usage | {"total_tokens": sum(usage.values())},
            "citations": data["citations"], "answer_id": answer.id, "hits": data["hits"]}


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
    return json.dumps({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra},
                      ensure_ascii=False, default=str)


class _Done:
    """A finished (non-streamed) answer presented like an AnswerStream: one piece, then ``.answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def __iter__(self):  # noqa: ANN204
        yield self.answer.text


def _drain(stream: Any) -> Answer:
    for _ in stream:
        pass
    return stream.answer


@router.post("/chat/completions", summary="OpenAI-compatible chat completion over the knowledge base")
async def chat_completions(body: ChatRequest, request: Request) -> Any:
    state = _state(request)
    message, history = _conversation(body)
    _check_question(state, message)
    model = body.model or state.settings.generation.model

    def start() -> Any:  # a follow-up is condensed with its history first, so only a first turn streams tokens
        if history:
            return _Done(state.qa.chat(message, history, k=body.k))
        return state.qa.ask_stream(message, k=body.k)

    if not body.stream:
        answer = await run_in_threadpool(_locked, state, lambda: _drain(start()))
        return _completion(answer, model)
    queue = _produce(state, start)

    async def events() -> AsyncIterator[str]:
        cid = f"chatcmpl-{int(time.time() * 1000)}"
        yield _chunk(cid, model, {"role": "assistant", "content": ""}, None)
        while True:
            kind, value = await queue.get()
            if kind == "token":
                yield _chunk(cid, model, {"content": value}, None)
            elif kind == "answer":
                data = answer_json(value)
                yield _chunk(cid, model, {}, "stop", citations=data["citations"], answer_id=value.id)
                break
            else:
                yield json.dumps({"error": {"message": value, "type": "server_error"}})
                break
        yield "[DONE]"

    return EventSourceResponse(events(), sep="\n")
