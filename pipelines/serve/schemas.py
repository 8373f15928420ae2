"""Request bodies of the HTTP API. Bad values are 422 responses that name the field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(_Body):
    question: str = Field(min_length=1, description="the question")
    k: int | None = Field(None, gt=0, le=100, description="passages to retrieve (default retrieval.k)")
    stream: bool = Field(False, description="answer as Server-Sent Events: 'token' events, then 'answer'")
    retrieval: bool = Field(True, description="false answers closed-book")
    source: str | None = Field(None, description="only passages whose source path matches this path or glob")
    tags: list[str] = Field(default_factory=list, description="only passages with every one of these tags")
    date_from: str | None = None
    date_to: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send name, tool_calls, ...
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | None = ""


class ChatRequest(BaseModel):
    """OpenAI ``chat.completions`` body; sampling fields are accepted, the server's generation settings apply."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    k: int | None = Field(None, gt=0, le=100, description="extension: passages to retrieve")


class FeedbackRequest(_Body):
    answer_id: str = Field(min_length=1, max_length=64)
    good: bool
    correction: str | None = Field(None, max_length=4000, description="the right answer (a distillation example)")


class IngestRequest(_Body):
    paths: list[str] = Field(min_length=1, description="server files, folders or globs inside serve.ingest_roots")
    prune: bool = False
    wait_seconds: float = Field(10.0, ge=0, le=600, description="answer with the report if done by then, else 202")
