"""Start a run from an existing HF Qwen2 model directory (`model.init_from`)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tinylm_train.models.qwen2.shapes import check_vocab
from tinylm_train.shards import Manifest

log = logging.getLogger(__name__)


def load_init_model(path: str | Path, manifest: Manifest, attention: str) -> torch.nn.Module:
    """The model at `path` (an export of ours, or Qwen1.5-0.5B) in fp32 with our attention path.

    Its vocabulary must cover the shard tokenizer's (ValueError otherwise); the shard's pad and
    eos ids are the ones training uses.
    """
    from transformers import AutoConfig, Qwen2ForCausalLM

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type != "qwen2":
        raise ValueError(f"model.init_from: {path} is a {config.model_type!r} model, not qwen2")
    check_vocab(config.vocab_size, manifest.vocab_size)
    model = Qwen2ForCausalLM.from_pretrained(
        path, local_files_only=True, dtype=torch.float32, attn_implementation=attention
    )
    model.config.use_cache = False
    model.config.pad_token_id = manifest.pad_id
    log.info(
        "model.init_from %s: %d layers, vocab %d", path, config.num_hidden_layers, config.vocab_size
    )
    return model
