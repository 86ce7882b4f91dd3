"""Pretraining: packed shard blocks, causal LM loss inside each document, the HF Trainer loop."""

from __future__ import annotations

from pathlib import Path

import torch

from tinylm_train.config import RunConfig
from tinylm_train.export import finish_export
from tinylm_train.models.qwen2 import build_config
from tinylm_train.models.qwen2.attention import select_attention
from tinylm_train.recipes.training import SUMMARY, close_run, run_training
from tinylm_train.shards import load_manifest

__all__ = ["SUMMARY", "run_pretrain"]


def run_pretrain(config: RunConfig, *, resume: bool = False) -> Path:
    """Train per `config`; returns the exported model directory (summary.json beside it).

    A fresh model of `model.name`/`model.shape`, or `model.init_from`'s weights (continued
    pretraining).
    """
    manifest = load_manifest(config.data.path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attention = select_attention(device, config.model.attention)
    if config.model.init_from is not None:
        from tinylm_train.init_from import load_init_from

        model = load_init_from(
            config.model.init_from,
            tokenizer_dir=manifest.tokenizer_dir,
            eos_id=manifest.eos_id,
            pad_id=manifest.pad_id,
            attention=attention,
        )
    else:
        from transformers import Qwen2ForCausalLM

        model_config = build_config(
            config.model.resolved_shape(),
            tokenizer_vocab_size=manifest.vocab_size,
            eos_id=manifest.eos_id,
            pad_id=manifest.pad_id,
            attn_implementation=attention,
        )
        torch.manual_seed(config.seed)
        model = Qwen2ForCausalLM(model_config)

    run = run_training(
        config, manifest=manifest, model=model, attention=attention, device=device, resume=resume
    )
    final = run.out / "final"
    run.loop.save_model(final)
    if run.loop.is_main:
        finish_export(final, manifest.tokenizer_dir)
        close_run(config, run, final)
    return final
