"""Generator for any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama) by ``base_url`` + model name.

The server owns the model and its chat template, so a "rendered prompt" here is the chat messages themselves,
serialised as JSON behind a marker; ``generate``/``stream`` send them to ``/chat/completions`` (a plain string goes
to ``/completions``). Token counts for prompt packing come from the server's own tokenizer when it exposes one
(vLLM ``/tokenize``, llama-cpp-python ``/extras/tokenize``). Only the standard library is used: no SDK to install.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.config import GenerationConfig
from rag.errors import ModelLoadError

MESSAGES_MARK = "\x00chat-messages\x00"  # starts every rendered prompt; other text goes to /completions as is
MESSAGE_OVERHEAD = 8  # tokens a chat template adds per message (role markers, separators), when counted by content
OVERRIDES = {"max_new_tokens", "temperature", "top_p", "stop"}


class OpenAIGenerator:
    """Chat generation through an OpenAI-compatible HTTP server; implements ``rag.types.Generator``.

    Example:
        >>> gen = OpenAIGenerator(GenerationConfig(backend="openai", base_url="http://127.0.0.1:8080/v1"))
        >>> gen.generate(gen.render([{"role": "user", "content": "Say hi"}]), max_new_tokens=8)
        'Hi!'
    """

    def __init__(self, config: GenerationConfig, adapter: str | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.model_id = config.api_model or config.model
        adapter = adapter if adapter is not None else config.adapter
        # servers load LoRA adapters by name (vLLM --lora-modules NAME=PATH); only send it when configured to
        self.adapter_id = Path(adapter).name if adapter and config.api_adapters else None
        self.last_stats: dict[str, float] = {}
        self._tokenize_path: str | None = None

    # ---- Generator protocol ---------------------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        return self.config.context_window or 8192

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The messages themselves (the server applies its chat template)."""
        return MESSAGES_MARK + json.dumps([dict(m) for m in messages], ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        """Tokens by the server's tokenizer; a rendered prompt counts its contents plus a per-message overhead."""
        messages = _messages(text)
        if messages is None:
            return self._tokenize(text)
        return sum(self._tokenize(m["content"]) + MESSAGE_OVERHEAD for m in messages)

    def generate(self, prompt: str, **overrides: Any) -> str:
        """The whole answer to a rendered prompt (streamed underneath, so ``last_stats`` has the first token)."""
        return "".join(self.stream(prompt, **overrides))

    def stream(self, prompt: str, **overrides: Any) -> Iterator[str]:
        """Yield the answer as the server sends it (server-sent events)."""
        body, path = self._request_body(prompt, overrides), "/chat/completions"
        if _messages(prompt) is None:
            path = "/completions"
        start = time.perf_counter()
        stats = {"prompt_tokens": 0, "completion_tokens": 0, "first_token_s": 0.0, "total_s": 0.0}
        self.last_stats = stats
        with self._post(path, body, stream=True) as response:
            for chunk in _events(response):
                piece = _piece(chunk)
                if piece:
                    if not stats["completion_tokens"]:
                        stats["first_token_s"] = time.perf_counter() - start
                    stats["completion_tokens"] += 1  # one event per token on the servers we know
                    yield piece
                usage = chunk.get("usage") or {}
                stats["prompt_tokens"] = usage.get("prompt_tokens", stats["prompt_tokens"])
        stats["total_s"] = time.perf_counter() - start

    def generate_batch(self, prompts: Sequence[str], **overrides: Any) -> list[str]:
        """One request per prompt (the server batches concurrent requests itself)."""
        return [self.generate(p, **overrides) for p in prompts]

    # ---- HTTP -----------------------------------------------------------------------------------------------

    def _request_body(self, prompt: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - OVERRIDES
        if unknown:
            raise ValueError(f"unknown generation override(s): {sorted(unknown)}")
        body: dict[str, Any] = {
            "model": self.adapter_id or self.model_id, "stream": True, "seed": self.config.seed,
            "max_tokens": int(overrides.get("max_new_tokens", self.config.max_new_tokens)),
            "temperature": float(overrides.get("temperature", self.config.temperature)),
            "top_p": float(overrides.get("top_p", self.config.top_p)),
            # no repetition penalty, like the in-process backends (llama.cpp's server defaults to 1.1; vLLM's name)
            "repeat_penalty": 1.0, "repetition_penalty": 1.0,
        }
        if overrides.get("stop"):
            body["stop"] = list(overrides["stop"])
        messages = _messages(prompt)
        body.update({"messages": messages} if messages is not None else {"prompt": prompt})
        return body

    def _post(self, path: str, body: Mapping[str, Any], stream: bool = False, root: bool = False) -> Any:
        base = self.base_url.removesuffix("/v1") if root else self.base_url
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=self.config.request_timeout)  # noqa: S310 - configured URL
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise ModelLoadError(f"{base + path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ModelLoadError(f"cannot reach the OpenAI-compatible server at {base}: {exc}; start it or fix "
                                 f"generation.base_url") from None

    def _tokenize(self, text: str) -> int:
        """Token count from the server: vLLM ``/tokenize``, then llama-cpp-python ``/extras/tokenize``."""
        if self._tokenize_path == "":
            return len(text) // 3 + 1
        candidates = [self._tokenize_path] if self._tokenize_path else ["/tokenize", "/extras/tokenize"]
        for path in candidates:
            body = {"model": self.model_id, "prompt": text, "input": text, "add_special_tokens": False}
            try:
                with self._post(path, body, root=True) as response:
                    data = json.loads(response.read())
            except ModelLoadError:
                continue
            tokens = data.get("tokens")
            if isinstance(tokens, list):
                self._tokenize_path = path
                return len(tokens)
            if isinstance(data.get("count"), int):
                self._tokenize_path = path
                return int(data["count"])
        # no tokenizer endpoint: over-estimate (about 3 characters per token) so packing never overflows
        self._tokenize_path = ""
        return len(text) // 3 + 1


def _messages(prompt: str) -> list[dict[str, str]] | None:
    if not prompt.startswith(MESSAGES_MARK):
        return None
    return json.loads(prompt[len(MESSAGES_MARK) :])


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, until ``[DONE]``."""
    for raw in response:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _piece(chunk: Mapping[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    first = choices[0]
    delta = first.get("delta") or {}
    return delta.get("content") or first.get("text") or ""
