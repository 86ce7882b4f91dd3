"""Named Qwen2 model shapes and the vocabulary size that comes from the shard manifest.

No torch import here: the run config validates model names against MODEL_SHAPES.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import Qwen2Config

VOCAB_MULTIPLE = 64


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelShape:
    """The architecture hyper-parameters of one named Qwen2 model (vocabulary excluded)."""

    hidden_size: int
    """Width of the residual stream."""
    num_hidden_layers: int
    """Number of transformer blocks."""
    num_attention_heads: int
    """Query heads; the head dimension is hidden_size / num_attention_heads."""
    num_key_value_heads: int
    """Key/value heads (equal to num_attention_heads means plain multi-head attention)."""
    intermediate_size: int
    """Width of the SwiGLU MLP."""
    rope_theta: float
    """RoPE base frequency."""
    max_position_embeddings: int
    """Longest sequence the model is configured for."""
    tie_word_embeddings: bool = True
    """Share the input embedding with the output projection."""

    # why: a run config's inline `model.shape` is validated into this class; a misspelled key
    # must be an error, not ignored.
    __pydantic_config__ = {"extra": "forbid"}

    def __post_init__(self) -> None:
        sizes = {
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
        }
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.rope_theta <= 0:
            raise ValueError(f"rope_theta must be positive, got {self.rope_theta}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )


MODEL_SHAPES: dict[str, ModelShape] = {
    # The Qwen1.5-0.5B shape.
    "tinylm-0.5b": ModelShape(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        intermediate_size=2816,
        rope_theta=1e6,
        max_position_embeddings=32768,
    ),
    # Small enough to train on CPU (1.8M parameters at vocab 8000): about 0.8 s a step at
    # 2 x 1024 tokens on one thread, so the 150-step sample-cpu run trains in about two minutes.
    "cpu-small": ModelShape(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=352,
        rope_theta=1e4,
        max_position_embeddings=2048,
    ),
    # Tiny: every code path on CPU in tests.
    "debug": ModelShape(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        rope_theta=1e4,
        max_position_embeddings=2048,
    ),
}


def padded_vocab_size(tokenizer_vocab_size: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """The embedding rows for a tokenizer: its vocabulary rounded up to a multiple of `multiple`."""
    if tokenizer_vocab_size <= 0:
        raise ValueError(f"tokenizer vocab_size must be positive, got {tokenizer_vocab_size}")
    return -(-tokenizer_vocab_size // multiple) * multiple


def check_vocab(model_vocab_size: int, tokenizer_vocab_size: int) -> None:
    """Refuse a model whose embedding table cannot hold every id the tokenizer emits."""
    if model_vocab_size < tokenizer_vocab_size:
        raise ValueError(
            f"model vocab_size {model_vocab_size} is smaller than the shard tokenizer's "
            f"vocab_size {tokenizer_vocab_size}: ids would index past the embedding table"
        )


def build_config(
    shape: str | ModelShape,
    *,
    tokenizer_vocab_size: int,
    eos_id: int,
    pad_id: int,
    vocab_size: int | None = None,
    attn_implementation: str = "sdpa",
) -> Qwen2Config:
    """A transformers Qwen2Config for a shape (or its name) and the shard tokenizer's vocabulary.

    `vocab_size` overrides the padded tokenizer vocabulary; it must still cover the tokenizer.
    """
    from transformers import Qwen2Config

    if isinstance(shape, str):
        if shape not in MODEL_SHAPES:
            raise ValueError(f"unknown model {shape!r}; known: {', '.join(sorted(MODEL_SHAPES))}")
        shape = MODEL_SHAPES[shape]
    vocab = padded_vocab_size(tokenizer_vocab_size) if vocab_size is None else vocab_size
    check_vocab(vocab, tokenizer_vocab_size)
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        intermediate_size=shape.intermediate_size,
        rope_theta=shape.rope_theta,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=shape.tie_word_embeddings,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=False,
    )
    config._attn_implementation = attn_implementation
    return config


def count_parameters(config: Qwen2Config) -> int:
    """Parameters of a Qwen2 model with this config, computed without building it."""
    d, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = d // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    attn = d * d + 2 * d * kv + d * d + d + 2 * kv  # q,k,v,o weights; q,k,v biases
    mlp = 3 * d * f
    norms = 2 * d
    embed = config.vocab_size * d
    lm_head = 0 if config.tie_word_embeddings else config.vocab_size * d
    return layers * (attn + mlp + norms) + embed + lm_head + d
