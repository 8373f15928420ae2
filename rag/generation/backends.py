"""One factory for the generation backends, chosen by ``generation.backend`` (one module per backend).

| backend        | module                 | use it for                                                         |
|----------------|------------------------|--------------------------------------------------------------------|
| ``transformers`` | ``rag.generation.generate``     | the reference: training (distillation), scoring, batched eval       |
| ``llamacpp``   | ``rag.generation.llamacpp``       | fast CPU answers in process; bigger GGUF models; LoRA served as GGUF |
| ``openai``     | ``rag.generation.openai_backend`` | a running vLLM / llama.cpp server / Ollama, by base_url + model      |

Each module is imported only when its backend is chosen, so nobody pays for torch or llama.cpp they do not use.
"""

from __future__ import annotations

import importlib.util

from rag.config import GenerationConfig
from rag.types import Generator

BACKENDS = ("auto", "transformers", "llamacpp", "openai")


def chosen_backend(setting: str) -> str:
    """``auto``: llama.cpp when llama-cpp-python is installed (faster answers on CPU), else transformers."""
    if setting != "auto":
        return setting
    return "llamacpp" if importlib.util.find_spec("llama_cpp") is not None else "transformers"


def make_generator(config: GenerationConfig, adapter: str | None = None) -> Generator:
    """The configured backend's generator; ``adapter`` (a peft folder) overrides ``config.adapter``.

    Example:
        >>> gen = make_generator(GenerationConfig(backend="llamacpp"))
        >>> type(gen).__name__
        'LlamaCppGenerator'
    """
    backend = chosen_backend(config.backend)
    if backend == "transformers":
        from rag.generation.generate import HFGenerator

        return HFGenerator(config, adapter=adapter)
    if backend == "llamacpp":
        from rag.generation.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(config, adapter=adapter)
    if backend == "openai":
        from rag.generation.openai_backend import OpenAIGenerator

        return OpenAIGenerator(config, adapter=adapter)
    raise ValueError(f"generation.backend must be one of {BACKENDS}. Currently, it is {config.backend!r}")
