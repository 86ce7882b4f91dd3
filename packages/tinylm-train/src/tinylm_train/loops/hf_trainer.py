"""The HF Trainer loop over the shared parts: TrainingArguments from the run config, each rank's
own block stream, the recipe's collator and loss, metrics, console, validation and whole-
checkpoint callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from tinylm_train.checkpoint import (
    ResumePoint,
    mark_complete,
    rotate_checkpoints,
    save_data_state,
)
from tinylm_train.config import RunConfig
from tinylm_train.console import TrainingProgress
from tinylm_train.data import BlockDataset
from tinylm_train.distributed import barrier, configure_cpu_deepspeed_state, launched_world_size
from tinylm_train.loss import LOSS_WEIGHTS, Loss
from tinylm_train.metrics import MetricsWriter
from tinylm_train.validation import ValidationSet, validation_loss

log = logging.getLogger(__name__)


def use_bf16(setting: bool | str, device: str) -> bool:
    """The run config's `model.bf16` on this device ('auto': CUDA with bf16 support)."""
    if setting == "auto":
        return device == "cuda" and torch.cuda.is_bf16_supported()
    return bool(setting)


def training_arguments(
    config: RunConfig, *, device: str, validation: bool = False
) -> TrainingArguments:
    """TrainingArguments for the run; joins the CPU DeepSpeed process group first when needed.

    Checkpoint rotation is ours (CheckpointCallback), so the Trainer gets no save_total_limit.
    """
    opt, parallel = config.optimisation, config.parallelism
    # why: see tinylm_train.distributed; without it every CPU rank believes it is rank 0.
    configured = parallel.deepspeed is not None and configure_cpu_deepspeed_state()
    cpu_ddp = device == "cpu" and parallel.deepspeed is None
    return TrainingArguments(
        accelerator_config={"use_configured_state": configured},
        output_dir=config.output_dir,
        max_steps=opt.max_steps,
        per_device_train_batch_size=config.data.per_device_batch_size,
        gradient_accumulation_steps=opt.gradient_accumulation_steps,
        learning_rate=opt.learning_rate,
        weight_decay=opt.weight_decay,
        warmup_steps=opt.warmup_steps,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": opt.min_lr_ratio},
        optim="adamw_torch",
        max_grad_norm=opt.max_grad_norm,
        save_strategy="steps",
        save_steps=config.checkpoint.save_steps,
        save_total_limit=None,
        logging_steps=config.metrics.logging_steps,
        eval_strategy="steps" if validation else "no",
        eval_steps=config.metrics.eval_steps if validation else None,
        bf16=use_bf16(config.model.bf16, device),
        activation_checkpointing=config.model.gradient_checkpointing,
        deepspeed=parallel.deepspeed_path(),
        use_cpu=cpu_ddp,
        ddp_backend="gloo" if cpu_ddp and launched_world_size() > 1 else None,
        seed=config.seed,
        data_seed=config.seed,
        # why: the data position is restored from the checkpoint, not by replaying batches.
        ignore_data_skip=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to=list(config.metrics.report_to),
        # why: our console (TrainingProgress) replaces the tqdm bar and the printed log dicts.
        disable_tqdm=True,
    )


class BlockTrainer(Trainer):
    """A Trainer that feeds each rank's own block stream as is, adds our throughput and MFU to
    every logged step (so TensorBoard and W&B get them too), and scores the validation split.
    """

    metrics: MetricsWriter | None = None
    progress: TrainingProgress | None = None
    validation: ValidationSet | None = None
    validation_collate: Callable | None = None
    validation_loss_fn: Loss | None = None

    def get_train_dataloader(self) -> DataLoader:
        # why: each rank's reader already yields only its shard; accelerate's prepare would
        # shard the stream again (and read ahead of the checkpointed position).
        return DataLoader(
            self.train_dataset,
            batch_size=self.args.per_device_train_batch_size,
            collate_fn=self.data_collator,
            num_workers=0,
        )

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The Trainer's accumulated micro-batches; with per-token loss weights (the `sample`
        normalisation) the divisor is their sum over the whole accumulated batch on all ranks
        (the number of samples), as the token count is for the `token` one."""
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if batches and LOSS_WEIGHTS in batches[0]:
            num_items = sum(b[LOSS_WEIGHTS][:, 1:].double().sum() for b in batches).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                num_items = self.accelerator.gather(num_items).sum()
        return batches, num_items

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # why: the loss weights are no model input; the loss function gets them beside the labels
        self.compute_loss_func.weights = inputs.pop(LOSS_WEIGHTS, None)
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self.compute_loss_func.weights = None

    def record_extras(self, logs: dict[str, float]) -> tuple[dict, int | None]:
        """What a recipe adds to each metrics record, and this device's tokens since the last
        one (None: the fixed tokens per step); the block recipes add nothing."""
        return {}, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        step = self.state.global_step
        extra, tokens = self.record_extras(logs)
        if self.metrics is not None and "loss" in logs:
            record = self.metrics.log(
                step,
                logs["loss"],
                lr=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
                tokens=tokens,
                extra=extra,
            )
            logs["tokens_per_s"] = record["tokens_per_s"]
            if record["mfu"] is not None:
                logs["mfu"] = record["mfu"]
            if self.progress is not None:
                self.progress.record(record)
        if self.metrics is not None and "eval_loss" in logs:
            record = self.metrics.log_validation(
                step, logs["eval_loss"], tokens=int(logs["eval_tokens"]), extra=extra
            )
            if self.progress is not None:
                self.progress.validation(record)
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        loss, tokens = validation_loss(
            self.model,
            self.validation,
            collate=self.validation_collate,
            loss=self.validation_loss_fn,
            batch_size=self.args.per_device_train_batch_size,
            device=self.args.device,
            bf16=self.args.bf16,
        )
        metrics = {f"{metric_key_prefix}_loss": loss, f"{metric_key_prefix}_tokens": tokens}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics


class LogitsLoss:
    """Adapts a loop-independent Loss to the Trainer's compute_loss_func(outputs, labels, ...).

    `weights` holds the current micro-batch's per-token loss weights, when it has them.
    """

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.weights: torch.Tensor | None = None

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        if self.weights is None:
            return self.loss(outputs.logits, labels, num_items_in_batch=num_items_in_batch)
        return self.loss(
            outputs.logits, labels, num_items_in_batch=num_items_in_batch, weights=self.weights
        )


class ConsoleCallback(TrainerCallback):
    """Starts the metrics clock and drives the progress bar (rank 0)."""

    def __init__(self, writer: MetricsWriter, progress: TrainingProgress | None) -> None:
        self.writer = writer
        self.progress = progress

    def on_train_begin(self, args, state, control, **kwargs):
        self.writer.start()
        if self.progress is not None:
            self.progress.start(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.step(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.close()


class CheckpointCallback(TrainerCallback):
    """Makes each checkpoint whole: this rank's data position after the Trainer's files, then,
    once every rank has written its files, rank 0's completion marker and the rotation.
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        rank: int,
        world_size: int,
        dataset: BlockDataset,
        keep: int,
    ) -> None:
        self.output_dir = output_dir
        self.rank = rank
        self.world_size = world_size
        self.dataset = dataset
        self.keep = keep

    def on_save(self, args, state, control, **kwargs):
        checkpoint = self.output_dir / f"checkpoint-{state.global_step}"
        checkpoint.mkdir(parents=True, exist_ok=True)
        save_data_state(checkpoint, self.rank, self.dataset.state_dict())
        barrier()
        if self.rank == 0:
            mark_complete(checkpoint, world_size=self.world_size)
            for removed in rotate_checkpoints(self.output_dir, keep=self.keep):
                log.debug("removed %s (checkpoint.save_total_limit)", removed.name)


class HFTrainerLoop:
    """Data-parallel training (DDP or DeepSpeed ZeRO) with the HF Trainer.

    Build it first: the process group decides this process's `rank` and `world_size`, which the
    dataset needs.
    """

    def __init__(self, config: RunConfig, *, device: str, validation: bool = False) -> None:
        self.args = training_arguments(config, device=device, validation=validation)
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.rank, self.world_size = self.args.process_index, self.args.world_size
        # the ranks the dataset reads with, and the stages one rank's tokens are shared by
        self.data_rank, self.data_world_size, self.stages = self.rank, self.world_size, 1
        if self.world_size != launched_world_size():
            raise RuntimeError(
                f"the launcher started {launched_world_size()} processes "
                f"but the Trainer sees {self.world_size}"
            )
        self.trainer: BlockTrainer | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def train(
        self,
        model: torch.nn.Module,
        *,
        dataset: BlockDataset | torch.utils.data.IterableDataset,
        collator: Callable,
        loss: Loss | None,
        metrics: MetricsWriter | None,
        progress: TrainingProgress | None = None,
        validation: ValidationSet | None = None,
        validation_collator: Callable | None = None,
        resume: ResumePoint | None = None,
        trainer_class: type[BlockTrainer] | None = None,
    ) -> None:
        """Train; `validation_collator` batches validation blocks (no block log).

        `trainer_class` is a BlockTrainer subclass whose own compute_loss replaces `loss` (None).
        """
        callbacks: list[TrainerCallback] = [
            CheckpointCallback(
                self.output_dir,
                rank=self.rank,
                world_size=self.world_size,
                dataset=dataset,
                keep=self.config.checkpoint.save_total_limit,
            )
        ]
        if metrics is not None:
            callbacks.insert(0, ConsoleCallback(metrics, progress))
        self.trainer = (trainer_class or BlockTrainer)(
            model=model,
            args=self.args,
            train_dataset=dataset,
            eval_dataset=validation,
            data_collator=collator,
            compute_loss_func=LogitsLoss(loss) if loss is not None else None,
            callbacks=callbacks,
        )
        self.trainer.remove_callback(PrinterCallback)
        self.trainer.remove_callback(ProgressCallback)
        self.trainer.metrics, self.trainer.progress = metrics, progress
        self.trainer.validation = validation
        self.trainer.validation_collate = validation_collator or collator
        self.trainer.validation_loss_fn = loss
        self.trainer.train(resume_from_checkpoint=str(resume.checkpoint) if resume else None)

    def save_model(self, target: Path) -> None:
        """Save the trained model in HF format (written by rank 0, gathered under ZeRO)."""
        if self.trainer is None:
            raise RuntimeError("save_model before train")
        self.trainer.save_model(str(target))
