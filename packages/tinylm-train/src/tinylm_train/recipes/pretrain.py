"""Pretraining: packed shard blocks, causal LM loss inside each document, the HF Trainer loop."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tinylm_train.checkpoint import drop_skipped, find_resume_point, truncate_jsonl
from tinylm_train.config import RunConfig
from tinylm_train.console import TrainingProgress, write_summary
from tinylm_train.data import BlockDataset, BlockLog, ModelInputCollator
from tinylm_train.distributed import barrier
from tinylm_train.export import finish_export
from tinylm_train.loops.hf_trainer import HFTrainerLoop
from tinylm_train.loss import causal_lm_loss
from tinylm_train.metrics import (
    MetricsWriter,
    flops_per_token,
    plot_losses,
    read_metrics,
    resolve_peak_flops,
)
from tinylm_train.models.qwen2 import build_config, count_parameters
from tinylm_train.models.qwen2.attention import select_attention
from tinylm_train.models.qwen2.init_from import load_init_model
from tinylm_train.shards import Manifest, ShardError, load_manifest
from tinylm_train.validation import ValidationSet, validation_manifest

log = logging.getLogger(__name__)

SUMMARY = "summary.json"


def _check_sizing(config: RunConfig, manifest: Manifest, world_size: int) -> None:
    """The run's declared block size and process count against what it got."""
    expected = config.data.block_size
    if expected is not None and expected != manifest.block_size:
        raise ShardError(
            f"data.block_size is {expected} but {manifest.root} has {manifest.block_size}-token "
            "blocks (rebuild the data or change data.block_size)"
        )
    planned = config.parallelism.world_size
    if planned is not None and planned != world_size:
        raise RuntimeError(
            f"parallelism.world_size is {planned} but {world_size} processes were started "
            "(the global batch would change): launch that many or change the setting"
        )


def _loop(config: RunConfig) -> type:
    """The training loop class of `parallelism.engine`."""
    if config.parallelism.engine == "pipeline":
        from tinylm_train.loops.pipeline import PipelineLoop

        return PipelineLoop
    return HFTrainerLoop


def run_pretrain(config: RunConfig, *, resume: bool = False) -> Path:
    """Train per `config`; returns the exported model directory (summary.json beside it)."""
    from transformers import Qwen2ForCausalLM

    manifest = load_manifest(config.data.path)
    held_out = validation_manifest(manifest)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attention = select_attention(device, config.model.attention)
    model_config = build_config(
        config.model.resolved_shape(),
        tokenizer_vocab_size=manifest.vocab_size,
        eos_id=manifest.eos_id,
        pad_id=manifest.pad_id,
        attn_implementation=attention,
    )
    torch.manual_seed(config.seed)
    if config.model.init_from is not None:
        model = load_init_model(config.model.init_from, manifest, attention)
        model_config = model.config
    else:
        model = Qwen2ForCausalLM(model_config)
    n_params = count_parameters(model_config)

    loop = _loop(config)(config, device=device, validation=held_out is not None)
    rank, world = loop.rank, loop.world_size
    # why: the pipeline's stages of one data-parallel rank read the same blocks
    data_rank, data_world = loop.data_rank, loop.data_world_size
    _check_sizing(config, manifest, world)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path, blocks_path = out / "metrics.jsonl", out / f"blocks-rank{rank}.jsonl"
    point = find_resume_point(out, rank=rank, world_size=world) if resume else None
    if point is not None:
        barrier()  # why: every rank has chosen before rank 0 removes what they skipped
        if loop.is_main:
            drop_skipped(point)
            truncate_jsonl(metrics_path, point.step)
        truncate_jsonl(blocks_path, point.step)

    dataset = BlockDataset(
        config.data.path,
        seed=config.seed,
        rank=data_rank,
        world_size=data_world,
        state=point.data_state if point else None,
    )
    validation = None
    if held_out is None:
        log.info("no validation split in %s: validation loss not reported", manifest.root)
    else:
        validation = ValidationSet(held_out, rank=rank, world_size=world)
        log.info(
            "validation split: %d blocks, loss every %d steps",
            held_out.num_blocks,
            config.metrics.eval_steps,
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
    tokens_per_step = config.data.per_device_batch_size * accumulation * manifest.block_size
    # why: one device's share; a pipeline's P stages share one data rank's tokens
    device_tokens = tokens_per_step / loop.stages if loop.stages > 1 else tokens_per_step
    device_name = torch.cuda.get_device_name() if device == "cuda" else None
    metrics = (
        MetricsWriter(
            metrics_path,
            tokens_per_step=device_tokens,
            flops_per_token=flops_per_token(
                n_params,
                model_config.num_hidden_layers,
                model_config.hidden_size,
                manifest.block_size,
            ),
            peak_flops=resolve_peak_flops(config.metrics.peak_flops, device_name),
            world_size=world,
            logging_steps=config.metrics.logging_steps,
        )
        if loop.is_main
        else None
    )
    log.info(
        "model %s: %d parameters, attention %s, %d blocks, rank %d of %d",
        config.model.label,
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
        progress=TrainingProgress(
            max_steps=config.optimisation.max_steps, every=config.metrics.console_steps
        )
        if loop.is_main
        else None,
        validation=validation,
        validation_collator=ModelInputCollator(attention),
        resume=point,
    )
    final = out / "final"
    loop.save_model(final)
    if loop.is_main:
        finish_export(final, manifest.tokenizer_dir)
        plot_losses(metrics_path, out / "loss.png")
        write_summary(out / SUMMARY, _summary(config, metrics, final, tokens_per_step * data_world))
    return final


def _summary(config: RunConfig, metrics: MetricsWriter, final: Path, step_tokens: int) -> dict:
    """The closing summary: the whole run's steps and tokens, this process's training time."""
    steps = config.optimisation.max_steps
    seconds = metrics.elapsed
    last_val = next(
        (r["val_loss"] for r in reversed(read_metrics(metrics.path)) if "val_loss" in r), None
    )
    return {
        "steps": steps,
        "tokens": steps * step_tokens,
        "train_seconds": seconds,
        "tokens_per_s": metrics.steps * step_tokens / seconds if seconds > 0 else 0.0,
        "final_loss": metrics.last_record["loss"] if metrics.last_record else None,
        "final_val_loss": last_val,
        "model": str(final),
        "metrics": str(metrics.path),
    }
