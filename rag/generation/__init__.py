"""Generation backends (transformers, llama.cpp, an OpenAI-compatible server) and their GGUF / LoRA helpers."""
