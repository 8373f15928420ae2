"""The `rag` command. Every error becomes one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import warnings
from collections.abc import Sequence

from pipelines.config import Settings, load_settings
from rag.errors import RagError


def _setup_quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    # environment, not an import: importing transformers here would load it (seconds) for `rag --help` too
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Retrieval-augmented knowledge extension.")
    parser.add_argument("--config", help="config.toml to read (default: ./config.toml when present)")
    parser.add_argument("--kb", help="knowledge-base folder (overrides kb.path)")
    parser.add_argument("--backend", choices=("auto", "transformers", "llamacpp", "openai"),
                        help="generation backend (overrides generation.backend)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from pipelines.cli import distill, eval, kb, qa, serve

    for module in (kb, qa, eval, distill, serve):
        module.register(sub)
    for command in sub.choices.values():  # as users type them: `rag ingest docs --kb mykb` works too
        _global_options(command)
    return parser


def _global_options(command: argparse.ArgumentParser) -> None:
    # SUPPRESS: when absent after the subcommand, the value given before it (or the default) stays
    command.add_argument("--config", default=argparse.SUPPRESS, help="config.toml to read")
    command.add_argument("--kb", default=argparse.SUPPRESS, help="knowledge-base folder (overrides kb.path)")
    command.add_argument("--backend", default=argparse.SUPPRESS, choices=("auto", "transformers", "llamacpp", "openai"),
                         help="generation backend (overrides generation.backend)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    path = args.config
    if path is None and os.path.exists("config.toml"):
        path = "config.toml"
    settings = load_settings(path)
    if args.kb:
        settings = settings.override({"kb.path": os.path.abspath(os.path.expanduser(args.kb))}, "--kb")
    if getattr(args, "backend", None):
        settings = settings.override({"generation.backend": args.backend}, "--backend")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    _setup_quiet()
    if hasattr(signal, "SIGPIPE"):  # `rag status --json | head -1`: end quietly like a Unix tool, no traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        return int(args.func(args, settings) or 0)
    except (RagError, ValueError, OSError) as exc:
        print(f"rag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # a kb.sqlite damaged in a way the open-time check did not see
        print(f"rag {args.command}: error: the knowledge base's kb.sqlite is damaged ({exc}); run `rag check` and "
              f"`rag repair`", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rag {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
