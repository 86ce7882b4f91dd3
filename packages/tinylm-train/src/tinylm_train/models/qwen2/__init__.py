"""Qwen2: named shapes (`shapes`) and document-masked attention (`attention`, imports torch)."""

from tinylm_train.models.qwen2.shapes import (
    MODEL_SHAPES,
    ModelShape,
    build_config,
    check_vocab,
    count_parameters,
    padded_vocab_size,
)

__all__ = [
    "MODEL_SHAPES",
    "ModelShape",
    "build_config",
    "check_vocab",
    "count_parameters",
    "padded_vocab_size",
]
