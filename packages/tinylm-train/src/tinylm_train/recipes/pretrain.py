"""Pretraining: packed shard blocks, causal LM loss inside each document, the HF Trainer loop."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tinylm_train.checkpoint import find_resume_point, truncate_jsonl
from tinylm_train.config import RunConfig
from tinylm_train.data import BlockDataset, BlockLog, ModelInputCollator
from tinylm_train.export import copy_tokenizer
from tinylm_train.loops.hf_trainer import HFTrainerLoop
from tinylm_train.loss import causal_lm_loss
from tinylm_train.metrics import MetricsWriter, flops_per_token, plot_losses
from tinylm_train.models.qwen2 import build_config, count_parameters
from tinylm_train.models.qwen2.attention import select_attention
from tinylm_train.shards import load_manifest

log = logging.getLogger(__name__)


def run_pretrain(config: RunConfig, *, resume: bool = False) -> Path:
    """Train per `config`; returns the exported model directory."""
    from transformers import Qwen2ForCausalLM

    manifest = load_manifest(config.data.path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attention = select_attention(device, config.model.attention)
    model_config = build_config(
        config.model.name,
        tokenizer_vocab_size=manifest.vocab_size,
        eos_id=manifest.eos_id,
        pad_id=manifest.pad_id,
        attn_implementation=attention,
    )
    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(model_config)
    n_params = count_parameters(model_config)

    loop = HFTrainerLoop(config, device=device)
    rank, world = loop.rank, loop.world_size
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path, blocks_path = out / "metrics.jsonl", out / f"blocks-rank{rank}.jsonl"
    point = find_resume_point(out, rank=rank, world_size=world) if resume else None
    if point is not None:
        log.info("resuming from %s at data position %s", point.checkpoint, point.data_state)
        if loop.is_main:
            truncate_jsonl(metrics_path, point.step)
        truncate_jsonl(blocks_path, point.step)

    dataset = BlockDataset(
        config.data.path,
        seed=config.seed,
        rank=rank,
        world_size=world,
        state=point.data_state if point else None,
    )
    accumulation = config.optimisation.gradient_accumulation_steps
    block_log = (
        BlockLog(
            blocks_path,
            gradient_accumulation_steps=accumulation,
            start_step=point.step if point else 0,
        )
        if config.data.record_blocks
        else None
    )
    metrics = (
        MetricsWriter(
            metrics_path,
            tokens_per_step=config.data.per_device_batch_size * accumulation * manifest.block_size,
            flops_per_token=flops_per_token(
                n_params,
                model_config.num_hidden_layers,
                model_config.hidden_size,
                manifest.block_size,
            ),
            peak_flops=config.metrics.peak_flops,
            world_size=world,
            logging_steps=config.metrics.logging_steps,
        )
        if loop.is_main
        else None
    )
    log.info(
        "model %s: %d parameters, attention %s, %d blocks, rank %d of %d",
        config.model.name,
        n_params,
        attention,
        manifest.num_blocks,
        rank,
        world,
    )
    loop.train(
        model,
        dataset=dataset,
        collator=ModelInputCollator(attention, block_log=block_log),
        loss=causal_lm_loss,
        metrics=metrics,
        resume=point,
    )
    final = out / "final"
    loop.save_model(final)
    if loop.is_main:
        copy_tokenizer(manifest.tokenizer_dir, final)
        plot_losses(metrics_path, out / "loss.png")
    return final
