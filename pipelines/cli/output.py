"""Output helpers shared by the `rag` subcommands."""

from __future__ import annotations

import json


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
