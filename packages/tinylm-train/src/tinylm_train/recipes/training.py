"""What every recipe does around its model: the loop, this rank's data, resume, validation,
metrics and console, then the loss plot and the closing summary. A recipe builds the model and
exports it; pretraining and SFT differ only in those and in how blocks become labels.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from tinylm_shards import PACKED_BLOCKS, ShardFormat
from tinylm_train.checkpoint import drop_skipped, find_resume_point, truncate_jsonl
from tinylm_train.config import RunConfig
from tinylm_train.console import TrainingProgress, write_summary
from tinylm_train.data import BlockDataset, BlockLog, ModelInputCollator
from tinylm_train.distributed import barrier
from tinylm_train.loops.hf_trainer import HFTrainerLoop
from tinylm_train.loss import causal_lm_loss
from tinylm_train.metrics import (
    MetricsWriter,
    flops_per_token,
    plot_losses,
    read_metrics,
    resolve_peak_flops,
)
from tinylm_train.models.qwen2 import count_parameters
from tinylm_train.shards import Manifest, ShardError
from tinylm_train.validation import ValidationSet, validation_manifest

log = logging.getLogger(__name__)

SUMMARY = "summary.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainedRun:
    """A finished training loop, for the recipe's export and `close_run`."""

    loop: HFTrainerLoop  # or loops.pipeline.PipelineLoop: the same interface
    metrics: MetricsWriter | None
    out: Path
    step_tokens: int
    """Token slots of one optimizer step over all ranks."""


def check_sizing(config: RunConfig, manifest: Manifest, world_size: int) -> None:
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


def training_loop(config: RunConfig) -> type:
    """The training loop class of `parallelism.engine`."""
    if config.parallelism.engine == "pipeline":
        from tinylm_train.loops.pipeline import PipelineLoop

        return PipelineLoop
    return HFTrainerLoop


def run_training(
    config: RunConfig,
    *,
    manifest: Manifest,
    model: torch.nn.Module,
    attention: str,
    device: str,
    resume: bool = False,
    formats: Sequence[ShardFormat] = (PACKED_BLOCKS,),
    token_columns: Sequence[str] = (),
    loss_mask: bool = False,
    sample_weights: bool = False,
    group_size: int | None = None,
) -> TrainedRun:
    """Train `model` on the run's shards (`loss_mask`, `sample_weights`, `group_size`: see
    ModelInputCollator).

    The validation loss is always the mean over the split's labelled tokens.
    """
    held_out = validation_manifest(manifest)
    model_config = model.config
    n_params = count_parameters(model_config)

    loop = training_loop(config)(config, device=device, validation=held_out is not None)
    rank, world = loop.rank, loop.world_size
    # why: the pipeline's stages of one data-parallel rank read the same blocks
    data_rank, data_world = loop.data_rank, loop.data_world_size
    check_sizing(config, manifest, world)
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
        formats=formats,
        token_columns=token_columns,
    )
    validation = None
    if held_out is None:
        log.info("no validation split in %s: validation loss not reported", manifest.root)
    else:
        validation = ValidationSet(
            held_out, rank=rank, world_size=world, token_columns=token_columns
        )
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
        collator=ModelInputCollator(
            attention,
            block_log=block_log,
            loss_mask=loss_mask,
            sample_weights=sample_weights,
            group_size=group_size,
        ),
        loss=causal_lm_loss,
        metrics=metrics,
        progress=TrainingProgress(
            max_steps=config.optimisation.max_steps, every=config.metrics.console_steps
        )
        if loop.is_main
        else None,
        validation=validation,
        validation_collator=ModelInputCollator(
            attention, loss_mask=loss_mask, group_size=group_size
        ),
        resume=point,
    )
    return TrainedRun(loop=loop, metrics=metrics, out=out, step_tokens=tokens_per_step * data_world)


def close_run(config: RunConfig, run: TrainedRun, final: Path, **extra) -> None:
    """Rank 0, after the export: the loss plot and summary.json (`extra` fields added)."""
    assert run.metrics is not None
    plot_losses(run.metrics.path, run.out / "loss.png")
    write_summary(run.out / SUMMARY, _summary(config, run.metrics, final, run.step_tokens) | extra)


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
