"""`rag serve`: the HTTP API and web page (FastAPI + uvicorn), bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import sys

from pipelines.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (OpenAI-compatible chat too) and the web page")
    p.add_argument("--host", help="bind address (default serve.host = 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default serve.port; 0 = any free port)")
    p.add_argument("--api-key", help="require this key on write endpoints (default serve.api_key or $RAG_API_KEY)")
    p.add_argument("--ingest-root", action="append", default=[],
                   help="a server folder POST /v1/ingest may read (repeatable)")
    p.add_argument("--no-preload", action="store_true", help="load the models on the first ask, not at startup")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import uvicorn

        from pipelines.serve import create_app
    except ImportError as exc:
        raise ValueError(f"`rag serve` needs the serve extra: pip install 'rag-knowledge[serve]' ({exc.name} missing)")
    changes = {k: v for k, v in {"serve.host": args.host, "serve.port": args.port, "serve.api_key": args.api_key,
                                 "serve.ingest_roots": args.ingest_root or None}.items() if v is not None}
    settings = settings.override(changes, "rag serve") if changes else settings
    cfg = settings.serve
    if cfg.host not in ("127.0.0.1", "::1", "localhost") and not (cfg.api_key or _env_key()):
        print(f"rag serve: warning: listening on {cfg.host} without an API key; anyone who can reach it can write",
              file=sys.stderr)
    app = create_app(settings, config_path=args.config, preload=not args.no_preload)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


def _env_key() -> str:
    import os

    return os.environ.get("RAG_API_KEY", "")
