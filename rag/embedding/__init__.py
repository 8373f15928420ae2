"""Passage and query embedders (sentence-transformers; ONNX Runtime int8)."""
