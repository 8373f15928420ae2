"""The OpenAI-compatible backend against a real server: llama-cpp-python's own, started on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

pytest.importorskip("llama_cpp.server.app", reason="the llamacpp extra is not installed: pip install -e '.[llamacpp]'")

from pipelines.config import Settings  # noqa: E402
from rag.generation.backends import make_generator  # noqa: E402
from rag.config import GenerationConfig  # noqa: E402
from rag.errors import ModelLoadError  # noqa: E402
from rag.generation.gguf import retyped_gguf  # noqa: E402
from rag.models import BUNDLED_LLMS, package_file  # noqa: E402

SERVED_TYPE = "F16"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_NAME = "smollm2-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the bundled GGUF; yields its /v1 URL and stops it afterwards.

    Its log goes to a file: a pipe nobody drains fills up and blocks the server mid-request.
    """
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # F16, the bundled GGUF re-typed once: the shipped Q4_1 in llama.cpp's AMX buffer crashes the server at its
    # first answer on CPUs with AMX (llama.cpp #20824; the in-process backend loads without that buffer there)
    config = GenerationConfig()
    gguf = retyped_gguf(package_file(*BUNDLED_LLMS["HuggingFaceTB/SmolLM2-135M-Instruct"]), SERVED_TYPE,
                        config.cache_dir, config.threads)
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--seed", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))  # noqa: SIM115 - closed by exit
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600  # importing the server and loading the model is slow on a busy CPU
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=5) as response:
                    json.loads(response.read())
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.terminate()
                    raise RuntimeError(f"llama_cpp.server did not start: {log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server: str):
    return make_generator(GenerationConfig(backend="openai", base_url=server, api_model=MODEL_NAME, max_new_tokens=48))


def _ask(gen, question: str) -> str:
    return gen.render([{"role": "user", "content": question}])


def test_answers_the_sample_kiln_question_through_the_pipeline(client, sample_kb, embedder) -> None:
    from pipelines.qa import QAPipeline

    # quote_first would answer the kiln's temperature by its sentence, without asking the server
    settings = Settings().override({"kb.path": str(sample_kb), "generation.max_new_tokens": 64,
                                    "answer.quote_first": False})
    pipe = QAPipeline.from_config(settings, embedder=embedder, generator=client)
    try:
        answer = pipe.ask("What temperature does the Velmora kiln reach?", log=False)
    finally:
        pipe.close()
    assert "1,340" in answer.text or "1340" in answer.text
    assert answer.tokens["completion"] > 0


def test_streams_and_matches_the_in_process_backend(client) -> None:
    prompt = _ask(client, "Explain photosynthesis in one sentence.")
    pieces = list(client.stream(prompt, max_new_tokens=24))
    assert len(pieces) > 3
    assert client.last_stats["total_s"] >= client.last_stats["first_token_s"] > 0
    local = make_generator(GenerationConfig(backend="llamacpp", gguf_type=SERVED_TYPE, max_new_tokens=24))
    question = [{"role": "user", "content": "Explain photosynthesis in one sentence."}]
    assert "".join(pieces) == local.generate(local.render(question))  # same GGUF, same template, greedy


def test_counts_tokens_with_the_servers_tokenizer(client) -> None:
    assert client.count_tokens("hello world") == 2
    assert client._tokenize_path == "/extras/tokenize"
    two = client.count_tokens(_ask(client, "hello world"))
    assert two == 2 + 8  # one message: its content plus the per-message template overhead


def test_plain_completion_and_stop(client) -> None:
    text = client.generate("One, two, three, four,", max_new_tokens=12, stop=["seven"])
    assert "seven" not in text and text.strip()


def test_unreachable_server_is_one_clear_error() -> None:
    gen = make_generator(GenerationConfig(backend="openai", base_url=f"http://127.0.0.1:{_free_port()}/v1"))
    with pytest.raises(ModelLoadError, match="cannot reach the OpenAI-compatible server"):
        gen.generate(_ask(gen, "hi"))


def test_adapter_is_sent_by_name_only_when_enabled(tmp_path) -> None:
    adapter = str(tmp_path / "20250101-000000-abcd")
    off = make_generator(GenerationConfig(backend="openai"), adapter=adapter)
    on = make_generator(GenerationConfig(backend="openai", api_adapters=True), adapter=adapter)
    assert off.adapter_id is None and off._request_body("x", {})["model"] == off.model_id
    assert on._request_body("x", {})["model"] == "20250101-000000-abcd"
