"""The HF Trainer loop over the shared parts: TrainingArguments from the run config, each rank's
own block stream, the recipe's collator and loss, metrics and data-position callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments

from tinylm_train.checkpoint import ResumePoint, save_data_state
from tinylm_train.config import RunConfig
from tinylm_train.data import BlockDataset
from tinylm_train.distributed import configure_cpu_deepspeed_state, launched_world_size
from tinylm_train.metrics import MetricsWriter

Loss = Callable[..., torch.Tensor]
"""(logits, labels, *, num_items_in_batch) -> the loss, e.g. tinylm_train.loss.causal_lm_loss."""


def use_bf16(setting: bool | str, device: str) -> bool:
    """The run config's `model.bf16` on this device ('auto': CUDA with bf16 support)."""
    if setting == "auto":
        return device == "cuda" and torch.cuda.is_bf16_supported()
    return bool(setting)


def training_arguments(config: RunConfig, *, device: str) -> TrainingArguments:
    """TrainingArguments for the run; joins the CPU DeepSpeed process group first when needed."""
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
        save_total_limit=config.checkpoint.save_total_limit,
        logging_steps=config.metrics.logging_steps,
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
        report_to=["tensorboard"],
        disable_tqdm=False,
    )


class BlockTrainer(Trainer):
    """A Trainer that feeds each rank's own block stream as is."""

    def get_train_dataloader(self) -> DataLoader:
        # why: each rank's reader already yields only its shard; accelerate's prepare would
        # shard the stream again (and read ahead of the checkpointed position).
        return DataLoader(
            self.train_dataset,
            batch_size=self.args.per_device_train_batch_size,
            collate_fn=self.data_collator,
            num_workers=0,
        )


class LogitsLoss:
    """Adapts a loop-independent Loss to the Trainer's compute_loss_func(outputs, labels, ...)."""

    def __init__(self, loss: Loss) -> None:
        self.loss = loss

    def __call__(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        return self.loss(outputs.logits, labels, num_items_in_batch=num_items_in_batch)


class MetricsCallback(TrainerCallback):
    """Hands each logged step's loss, lr and grad norm to a MetricsWriter."""

    def __init__(self, writer: MetricsWriter) -> None:
        self.writer = writer

    def on_train_begin(self, args, state, control, **kwargs):
        self.writer.start()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.writer.log(
                state.global_step,
                logs["loss"],
                lr=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
            )


class DataStateCallback(TrainerCallback):
    """Writes this rank's data position into each checkpoint, after the Trainer's own files."""

    def __init__(self, output_dir: Path, *, rank: int, dataset: BlockDataset) -> None:
        self.output_dir = output_dir
        self.rank = rank
        self.dataset = dataset

    def on_save(self, args, state, control, **kwargs):
        checkpoint = self.output_dir / f"checkpoint-{state.global_step}"
        checkpoint.mkdir(parents=True, exist_ok=True)
        save_data_state(checkpoint, self.rank, self.dataset.state_dict())


class HFTrainerLoop:
    """Data-parallel training (DDP or DeepSpeed ZeRO) with the HF Trainer.

    Build it first: the process group decides this process's `rank` and `world_size`, which the
    dataset needs.
    """

    def __init__(self, config: RunConfig, *, device: str) -> None:
        self.args = training_arguments(config, device=device)
        self.output_dir = Path(config.output_dir)
        self.rank, self.world_size = self.args.process_index, self.args.world_size
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
        dataset: BlockDataset,
        collator: Callable,
        loss: Loss,
        metrics: MetricsWriter | None,
        resume: ResumePoint | None = None,
    ) -> None:
        callbacks = [DataStateCallback(self.output_dir, rank=self.rank, dataset=dataset)]
        if metrics is not None:
            callbacks.insert(0, MetricsCallback(metrics))
        self.trainer = BlockTrainer(
            model=model,
            args=self.args,
            train_dataset=dataset,
            data_collator=collator,
            compute_loss_func=LogitsLoss(loss),
            callbacks=callbacks,
        )
        self.trainer.train(resume_from_checkpoint=str(resume.checkpoint) if resume else None)

    def save_model(self, target: Path) -> None:
        """Save the trained model in HF format (written by rank 0, gathered under ZeRO)."""
        if self.trainer is None:
            raise RuntimeError("save_model before train")
        self.trainer.save_model(str(target))
