"""Distillation: fold frequently retrieved knowledge into versioned LoRA adapters, gated by evaluation.

``select`` picks hot passages from the retrieval log, ``data`` builds the training set, ``train`` fits a LoRA
adapter, ``gate`` decides promotion, ``adapters`` versions adapters and the active pointer. The round that chains
them is ``pipelines.distill.DistillRound``.
"""
