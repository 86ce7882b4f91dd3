"""Pipeline parallel x data parallel training: a small loop around DeepSpeed's `train_batch`.

The HF Trainer cannot drive a pipeline engine, so this loop does what it does for the HF path,
with the same parts: each data-parallel rank's BlockDataset and the recipe's collator, the HF
cosine schedule, AdamW with the Trainer's weight-decay rule, MetricsWriter, TrainingProgress and
the whole-checkpoint protocol (data position per rank, completion marker last, rotation).

Topology: P = parallelism.pipeline_stages, data parallel = world size / P. DeepSpeed lays out
rank = stage * DP + data rank; every stage of one data-parallel rank reads the same blocks.

Loss normalisation is the HF engine's: the mean over the label tokens of the whole accumulated
batch of all data-parallel ranks (causal_lm_loss with num_items_in_batch). DeepSpeed divides each
micro-batch loss by the accumulation steps and averages gradients over the data-parallel ranks,
so each micro-batch's token sum is divided by N / (accumulation x DP), N the step's label tokens.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from tinylm_train.checkpoint import (
    PIPELINE_STATE,
    ResumePoint,
    mark_complete,
    rotate_checkpoints,
    save_data_state,
)
from tinylm_train.collate import IGNORE_INDEX
from tinylm_train.config import RunConfig
from tinylm_train.console import TrainingProgress
from tinylm_train.data import BlockDataset
from tinylm_train.distributed import barrier, launched_world_size
from tinylm_train.loss import Loss
from tinylm_train.metrics import MetricsWriter

log = logging.getLogger(__name__)


class PipelineConfigError(ValueError):
    """A pipeline topology that cannot run, found before any process group starts."""


def check_topology(config: RunConfig, world_size: int, num_layers: int) -> int:
    """The data-parallel size for this world, or a PipelineConfigError."""
    stages = config.parallelism.pipeline_stages
    if world_size % stages:
        raise PipelineConfigError(
            f"parallelism.pipeline_stages: {world_size} processes are not divisible into "
            f"{stages} stages (data parallel = world size / stages)"
        )
    if stages > num_layers:
        raise PipelineConfigError(
            f"parallelism.pipeline_stages: {stages} stages for a {num_layers}-layer model "
            "(at most one stage per decoder layer)"
        )
    return world_size // stages


def deepspeed_config(config: RunConfig, *, data_parallel: int, bf16: bool) -> dict:
    """The pipeline engine's DeepSpeed config from the run config (ZeRO 0 or 1)."""
    opt, micro = config.optimisation, config.data.per_device_batch_size
    stage = config.parallelism.zero_stage() if config.parallelism.deepspeed else 1
    ds: dict = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": opt.gradient_accumulation_steps,
        "train_batch_size": micro * opt.gradient_accumulation_steps * data_parallel,
        "gradient_clipping": opt.max_grad_norm,
        "zero_optimization": {"stage": stage},
        "steps_per_print": 10**9,  # why: our metrics and console report the steps
    }
    if bf16:
        # why: with ZeRO-1 this is DeepSpeed's BF16 optimizer: fp32 master weights and fp32
        # gradient accumulation across micro-batches (bf16 accumulation would lose small grads).
        ds["bf16"] = {"enabled": True}
        ds["data_types"] = {"grad_accum_dtype": "fp32"}
    return ds


def label_tokens(labels: torch.Tensor) -> int:
    """The tokens a causal LM loss predicts in one batch (the labels after the shift)."""
    return int((labels[..., 1:] != IGNORE_INDEX).sum())


class PipelineLoss:
    """The last stage's loss: `loss` on the logits, normalised as the module docstring says."""

    def __init__(self, loss: Loss) -> None:
        self.loss = loss

    def __call__(self, logits: torch.Tensor, labels: tuple[torch.Tensor, torch.Tensor]):
        labels, items = labels
        return self.loss(logits, labels, num_items_in_batch=items)


def _optimizer(module: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW as the HF engine builds it (adamw_torch; no decay on biases and norms)."""
    from transformers import Trainer, TrainingArguments

    # why: the Trainer's own rule, not a copy; it reads nothing from the Trainer instance.
    decay = set(Trainer.get_decay_parameter_names(None, module))
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    opt = config.optimisation
    defaults = TrainingArguments(output_dir=config.output_dir, report_to=[])
    groups = [
        {"params": [p for n, p in params if n in decay], "weight_decay": opt.weight_decay},
        {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=opt.learning_rate,
        betas=(defaults.adam_beta1, defaults.adam_beta2),
        eps=defaults.adam_epsilon,
    )


def _scheduler(optimizer, config: RunConfig):
    """The HF engine's schedule: linear warmup, cosine to min_lr_ratio."""
    from transformers import get_scheduler

    opt = config.optimisation
    return get_scheduler(
        "cosine_with_min_lr",
        optimizer,
        num_warmup_steps=opt.warmup_steps,
        num_training_steps=opt.max_steps,
        scheduler_specific_kwargs={"min_lr_rate": opt.min_lr_ratio},
    )


def _skip_shared_memory_op() -> None:
    """Let DeepSpeed's CPU communication backend start without its shared-memory all-reduce op.

    why: on CPU, DeepSpeed's TorchBackend JIT-compiles that op when it starts, under a file lock
    every process waits on (minutes on a busy machine); gloo runs the same collectives without it,
    and the backend takes a missing op (None) as "not built".
    """
    import importlib

    # why: the attribute deepspeed.comm.torch is the torch package; the module is named here
    backend = importlib.import_module("deepspeed.comm.torch")
    backend.build_shm_op = lambda: None


def rng_path(checkpoint: Path, rank: int) -> Path:
    return checkpoint / f"rng-rank{rank}.pt"


class PipelineLoop:
    """DeepSpeed pipeline training; the same interface as HFTrainerLoop.

    Build it first: it joins the process group and decides this process's global `rank`,
    `world_size`, and the `data_rank`/`data_world_size` the dataset reads with.
    """

    def __init__(self, config: RunConfig, *, device: str, validation: bool = False) -> None:
        import deepspeed

        from tinylm_train.loops.hf_trainer import use_bf16

        self.config = config
        self.device = device
        self.output_dir = Path(config.output_dir)
        self.world_size = launched_world_size()
        self.stages = config.parallelism.pipeline_stages
        if self.world_size % self.stages:  # why: before any process group starts
            raise PipelineConfigError(
                f"parallelism.pipeline_stages: {self.world_size} processes are not divisible "
                f"into {self.stages} stages"
            )
        self.data_world_size = self.world_size // self.stages
        self.bf16 = use_bf16(config.model.bf16, device)
        if validation:
            log.warning("validation loss is not reported with engine 'pipeline' (HF engine only)")
        if device == "cpu":
            _skip_shared_memory_op()
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(
                dist_backend="nccl" if device == "cuda" else "gloo",
                auto_mpi_discovery=False,
                distributed_port=int(os.environ.get("MASTER_PORT", "29500")),
                verbose=False,
            )
        self.rank = torch.distributed.get_rank()
        # why: PipeDataParallelTopology orders ranks stage-major (see the module docstring).
        self.data_rank = self.rank % self.data_world_size
        self.stage = self.rank // self.data_world_size
        if device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        self.engine = None
        self.model_config = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _build_engine(self, model: torch.nn.Module, loss: Loss):
        import deepspeed

        from tinylm_train.models.qwen2.pipeline import (
            build_pipeline_module,
            load_local_layers,
            stage_partition,
        )

        self.model_config = model.config
        check_topology(self.config, self.world_size, model.config.num_hidden_layers)
        parallel = self.config.parallelism
        module = build_pipeline_module(
            model.config,
            num_stages=self.stages,
            loss_fn=PipelineLoss(loss),
            partition_method=parallel.partition_method,
            activation_checkpoint_interval=(
                parallel.activation_checkpoint_interval
                if self.config.model.gradient_checkpointing
                else 0
            ),
        )
        load_local_layers(module, model.state_dict(), model.config)
        if self.is_main:
            for part in stage_partition(module):
                log.info(
                    "pipeline stage %d: layers %d-%d (%s), %d parameters",
                    part["stage"],
                    part["layers"][0],
                    part["layers"][1] - 1,
                    ", ".join(part["names"]),
                    part["parameters"],
                )
        optimizer = _optimizer(module, self.config)
        engine, _, _, _ = deepspeed.initialize(
            model=module,
            optimizer=optimizer,
            lr_scheduler=lambda opt: _scheduler(opt, self.config),
            config=deepspeed_config(
                self.config, data_parallel=self.data_world_size, bf16=self.bf16
            ),
        )
        return engine

    def _micro_batches(self, blocks: Iterator, collator: Callable) -> list:
        """One step's micro-batches of this data-parallel rank, normalised over all ranks."""
        per_device = self.config.data.per_device_batch_size
        accumulation = self.config.optimisation.gradient_accumulation_steps
        batches = [collator([next(blocks) for _ in range(per_device)]) for _ in range(accumulation)]
        count = torch.tensor(float(sum(label_tokens(b["labels"]) for b in batches)))
        # why: every stage holds the same count for its data rank, so the sum over the world is
        # the step's label tokens times the stages.
        torch.distributed.all_reduce(count)
        items = count / self.stages / (accumulation * self.data_world_size)
        return [((b["input_ids"], b["position_ids"]), (b["labels"], items)) for b in batches]

    def train(
        self,
        model: torch.nn.Module,
        *,
        dataset: BlockDataset,
        collator: Callable,
        loss: Loss,
        metrics: MetricsWriter | None,
        progress: TrainingProgress | None = None,
        validation=None,
        validation_collator: Callable | None = None,
        resume: ResumePoint | None = None,
    ) -> None:
        """Train `model`'s weights as a pipeline; `validation` is not used by this engine."""
        self.engine = self._build_engine(model, loss)
        del model  # why: each stage keeps only its own layers
        step = 0
        if resume is not None:
            self.engine.load_checkpoint(
                str(self.output_dir), tag=resume.checkpoint.name, load_lr_scheduler_states=True
            )
            torch.set_rng_state(torch.load(rng_path(resume.checkpoint, self.rank)))
            step = resume.step
        blocks = iter(dataset)
        max_steps = self.config.optimisation.max_steps
        scalars = self._scalar_writer() if metrics is not None else None
        if metrics is not None:
            metrics.start()
        if progress is not None:
            progress.start(step)
        while step < max_steps:
            micro = self._micro_batches(blocks, collator)
            lr = self.engine.get_lr()[0]  # why: the step's own rate, as the HF engine logs it
            loss_value = float(self.engine.train_batch(iter(micro)))
            step += 1
            if metrics is not None and step % self.config.metrics.logging_steps == 0:
                norm = self.engine.get_global_grad_norm()
                record = metrics.log(
                    step,
                    loss_value,
                    lr=lr,
                    grad_norm=None if norm is None else float(norm),
                )
                if scalars is not None:
                    for key, value in record.items():
                        if key != "step" and isinstance(value, int | float):
                            scalars.add_scalar(f"train/{key}", value, step)
                if progress is not None:
                    progress.record(record)
            if progress is not None:
                progress.step(step)
            if step % self.config.checkpoint.save_steps == 0 or step == max_steps:
                self._save(step, dataset)
        if scalars is not None:
            scalars.close()
        if progress is not None:
            progress.close()

    def _scalar_writer(self):
        """TensorBoard scalars under output_dir/runs (the HF engine's Trainer writes its own)."""
        if "tensorboard" not in self.config.metrics.report_to:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.output_dir / "runs" / "pipeline"))

    def _save(self, step: int, dataset: BlockDataset) -> None:
        """A whole checkpoint-N: DeepSpeed's states, then ours, the marker once all ranks wrote."""
        name = f"checkpoint-{step}"
        checkpoint = self.output_dir / name
        self.engine.save_checkpoint(str(self.output_dir), tag=name, save_latest=False)
        save_data_state(checkpoint, self.rank, dataset.state_dict())
        torch.save(torch.get_rng_state(), rng_path(checkpoint, self.rank))
        barrier()
        if self.is_main:
            state = {
                "step": step,
                "pipeline_stages": self.stages,
                "data_parallel": self.data_world_size,
                "num_layers": self.model_config.num_hidden_layers,
            }
            (checkpoint / PIPELINE_STATE).write_text(json.dumps(state), encoding="utf-8")
            self.model_config.save_pretrained(checkpoint)
            mark_complete(checkpoint, world_size=self.world_size)
            for removed in rotate_checkpoints(
                self.output_dir, keep=self.config.checkpoint.save_total_limit
            ):
                log.debug("removed %s (checkpoint.save_total_limit)", removed.name)
        barrier()

    def save_model(self, target: Path) -> None:
        """The trained model in HF format, from the last checkpoint (rank 0 writes it)."""
        from tinylm_train.export import export_pipeline_checkpoint

        if self.engine is None:
            raise RuntimeError("save_model before train")
        last = self.output_dir / f"checkpoint-{self.config.optimisation.max_steps}"
        if self.is_main:
            export_pipeline_checkpoint(last, target)
        barrier()
