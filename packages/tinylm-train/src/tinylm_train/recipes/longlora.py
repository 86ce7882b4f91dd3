"""LongLoRA: SFT at a longer context with S²-Attn, LoRA on q/k/v/o plus fully trained
embeddings and norms, and RoPE scaled for the new length (`tinylm-train longlora`, or `sft` with
a `long_context` section; both run `recipes/sft.py` with the pieces below).

The shards are SFT blocks built with `max_length` = `long_context.max_length` and `pack_mode:
none`: one sample per row, padded at the end as its own segment. Rows are whole groups (the
block is a multiple of the group size), and the S²-Attn layouts are also cut at every document
boundary, so no group ever joins two documents; one sample per row keeps each long sample's
groups its own and gives every group a full half-group neighbour to shift into.
"""

from __future__ import annotations

from pathlib import Path

from tinylm_train.config import ConfigError, LongContextSection, LoraSection, RunConfig
from tinylm_train.shards import Manifest, ShardError

LONGLORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
"""The adapters' layers when the run config has no `lora` section (the LongLoRA paper's)."""


def longlora_config(config: RunConfig) -> RunConfig:
    """The run config of `tinylm-train longlora`: a `long_context` section is required; without
    a `lora` section, LoRA r=8, alpha=16 on q, k, v, o."""
    if config.long_context is None:
        raise ConfigError(
            "long_context: required by tinylm-train longlora (max_length, trained_context)"
        )
    if config.model.init_from is None:
        raise ConfigError("model.init_from: LongLoRA starts from a model directory; give one")
    if config.lora is None:
        config = config.model_copy(
            update={"lora": LoraSection(target_modules=list(LONGLORA_TARGETS))}
        )
    return config


def check_long_context_data(section: LongContextSection, manifest: Manifest) -> None:
    """The shards must be rows of max_length tokens with one sample each."""
    sft = manifest.raw.get("sft", {})
    if manifest.block_size != section.max_length:
        raise ShardError(
            f"long_context.max_length is {section.max_length} but {manifest.root} has "
            f"{manifest.block_size}-token rows (build the SFT shards with max_length "
            f"{section.max_length})"
        )
    if sft.get("pack_mode") != "none":
        raise ShardError(
            f"{manifest.root}: pack_mode {sft.get('pack_mode')!r}; LongLoRA trains on rows of "
            "one sample each (build the SFT shards with pack_mode: none)"
        )


def long_context_attention(section: LongContextSection, device: str, requested: str) -> str:
    """tinylm_s2attn (registered) for S²-Attn, else the model.attention path."""
    if section.shifted_sparse_attention:
        from tinylm_train.models.qwen2.shifted_sparse import register_s2_attention

        return register_s2_attention()
    from tinylm_train.models.qwen2.attention import select_attention

    return select_attention(device, requested)


def run_longlora(config: RunConfig, *, resume: bool = False) -> Path:
    from tinylm_train.recipes.sft import run_sft

    return run_sft(longlora_config(config), resume=resume)
