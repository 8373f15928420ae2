"""A real `rag serve` process on 127.0.0.1 over a copy of the sample KB, started once per test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"
RAG_MAIN = "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server: its base URL, KB, the folder it may ingest from, and its log file."""

    def __init__(self, tmp: Path, kb: Path) -> None:
        self.kb, self.docs, self.log = kb, tmp / "docs", tmp / "server.log"
        self.docs.mkdir()
        config = tmp / "config.toml"
        # short answers keep the tests quick; a huge min_hits makes a distillation round end at selection
        config.write_text("[generation]\nmax_new_tokens = 40\n[distill]\nmin_hits = 1e9\n"
                          "[serve]\nmax_request_bytes = 200000\n", encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("RAG_API_KEY", None)
        cmd = [sys.executable, "-c", RAG_MAIN, "--config", str(config), "--kb", str(kb), "serve",
               "--port", str(self.port), "--api-key", API_KEY, "--ingest-root", str(self.docs)]
        with open(self.log, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rag serve exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"rag serve not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory, sample_kb):
    """The server process, models loaded once per session; its KB is a copy, so tests may write to it."""
    tmp = tmp_path_factory.mktemp("serve")
    kb = tmp / "kb"
    shutil.copytree(sample_kb, kb)
    srv = Server(tmp, kb)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}
