"""Pretraining with the HF Trainer on shard blocks: build → train → export."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch

from tinylm_train.attention import model_inputs, select_attention
from tinylm_train.checkpoint import (
    checkpoint_step,
    latest_complete_checkpoint,
    load_data_state,
    save_data_state,
    truncate_jsonl,
)
from tinylm_train.collate import collate_blocks
from tinylm_train.config import RunConfig
from tinylm_train.distributed import configure_cpu_deepspeed_state, launched_world_size
from tinylm_train.models import build_config, count_parameters
from tinylm_train.shards import ShardReader, load_manifest

log = logging.getLogger(__name__)


class BlockDataset(torch.utils.data.IterableDataset):
    """This rank's endless stream of blocks; its position is saved in every checkpoint."""

    def __init__(
        self, data: str, *, seed: int, rank: int, world_size: int, state: dict | None = None
    ) -> None:
        self.reader = ShardReader(data, seed=seed, rank=rank, world_size=world_size)
        if state is not None:
            self.reader.load_state_dict(state)

    def __iter__(self):
        return iter(self.reader)

    def state_dict(self) -> dict:
        return self.reader.state_dict()


def flops_per_token(n_params: int, layers: int, hidden: int, seq: int) -> float:
    """6·N + 12·L·d·T training FLOPs per token."""
    return 6 * n_params + 12 * layers * hidden * seq


def _deepspeed_path(value: str | None) -> str | None:
    if value in ("zero1", "zero2"):
        from importlib.resources import files

        return str(files("tinylm_train") / "configs" / f"ds_{value}.json")
    return value


def run_pretrain(config: RunConfig, *, resume: bool = False) -> Path:
    """Train per `config`; returns the exported model directory."""
    from torch.utils.data import DataLoader
    from transformers import Qwen2ForCausalLM, Trainer, TrainerCallback, TrainingArguments

    manifest = load_manifest(config.data)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    attention = select_attention(device, config.attention)
    model_config = build_config(
        config.model,
        tokenizer_vocab_size=manifest.vocab_size,
        eos_id=manifest.eos_id,
        pad_id=manifest.pad_id,
        attn_implementation=attention,
    )
    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(model_config)
    n_params = count_parameters(model_config)
    bf16 = (
        (device == "cuda" and torch.cuda.is_bf16_supported())
        if config.bf16 == "auto"
        else config.bf16
    )
    out = Path(config.output_dir)
    # why: see tinylm_train.distributed; without it every CPU rank believes it is rank 0.
    configured = config.deepspeed is not None and configure_cpu_deepspeed_state()
    cpu_ddp = device == "cpu" and config.deepspeed is None
    args = TrainingArguments(
        accelerator_config={"use_configured_state": configured},
        output_dir=str(out),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": config.min_lr_ratio},
        optim="adamw_torch",
        max_grad_norm=config.max_grad_norm,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        bf16=bf16,
        activation_checkpointing=config.gradient_checkpointing,
        deepspeed=_deepspeed_path(config.deepspeed),
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
    rank, world = args.process_index, args.world_size
    if world != launched_world_size():
        raise RuntimeError(
            f"the launcher started {launched_world_size()} processes but the Trainer sees {world}"
        )

    resume_from: Path | None = None
    data_state: dict | None = None
    if resume:
        resume_from = latest_complete_checkpoint(out, world)
        if resume_from is None:
            raise FileNotFoundError(f"--resume: no complete checkpoint-N in {out}")
        data_state = load_data_state(resume_from, rank)
        log.info("resuming from %s at data position %s", resume_from, data_state)
    dataset = BlockDataset(
        config.data, seed=config.seed, rank=rank, world_size=world, state=data_state
    )
    start_step = 0 if resume_from is None else checkpoint_step(resume_from)
    metrics_path = out / "metrics.jsonl"
    blocks_path = out / f"blocks-rank{rank}.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    if resume_from is not None:
        if rank == 0:
            truncate_jsonl(metrics_path, start_step)
        truncate_jsonl(blocks_path, start_step)

    tokens_per_step = (
        config.per_device_batch_size * config.gradient_accumulation_steps * manifest.block_size
    )
    fpt = flops_per_token(
        n_params, model_config.num_hidden_layers, model_config.hidden_size, manifest.block_size
    )

    class MetricsCallback(TrainerCallback):
        def on_train_begin(self, args_, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_log(self, args_, state, control, logs=None, **kwargs):
            if rank != 0 or not logs or "loss" not in logs:
                return
            now = time.perf_counter()
            seconds = (now - self.last) / max(config.logging_steps, 1)
            self.last = now
            tps = tokens_per_step * world / seconds
            record = {
                "step": state.global_step,
                "loss": logs["loss"],
                "lr": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens_per_s": tps,
                "mfu": tps * fpt / (config.peak_flops * world),
            }
            with metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    class DataStateCallback(TrainerCallback):
        def on_save(self, args_, state, control, **kwargs):
            checkpoint = out / f"checkpoint-{state.global_step}"
            checkpoint.mkdir(parents=True, exist_ok=True)
            save_data_state(checkpoint, rank, dataset.state_dict())

    micro_batches = [start_step * config.gradient_accumulation_steps]

    def collator(blocks):
        if config.record_blocks:
            step = micro_batches[0] // config.gradient_accumulation_steps + 1
            with blocks_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, "blocks": [b.index for b in blocks]}) + "\n")
        micro_batches[0] += 1
        return model_inputs(collate_blocks(blocks), attention)

    class BlockTrainer(Trainer):
        def get_train_dataloader(self) -> DataLoader:
            # why: each rank's reader already yields only its shard; accelerate's prepare would
            # shard the stream again (and read ahead of the checkpointed position).
            return DataLoader(
                self.train_dataset,
                batch_size=config.per_device_batch_size,
                collate_fn=self.data_collator,
                num_workers=0,
            )

    trainer = BlockTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[MetricsCallback(), DataStateCallback()],
    )
    log.info(
        "model %s: %d parameters, attention %s, %d blocks, rank %d of %d",
        config.model,
        n_params,
        attention,
        manifest.num_blocks,
        rank,
        world,
    )
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = out / "final"
    trainer.save_model(str(final))  # writes on rank 0 only
    if trainer.is_world_process_zero():
        copy_tokenizer(manifest.tokenizer_dir, final)
        plot_losses(metrics_path, out / "loss.png")
    return final


def copy_tokenizer(tokenizer_dir: Path, target: Path) -> None:
    for item in tokenizer_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)


def plot_losses(metrics_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics_path.is_file():
        return
    rows = [json.loads(line) for line in metrics_path.read_text(encoding="utf-8").splitlines()]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    fig.savefig(png, dpi=100)
    plt.close(fig)


def export_checkpoint(checkpoint: str | Path, data: str | Path, target: str | Path) -> Path:
    """Export a Trainer checkpoint in HF format with the shard tokenizer's files."""
    from transformers import AutoModelForCausalLM

    manifest = load_manifest(data)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    target = Path(target)
    model.save_pretrained(target)
    copy_tokenizer(manifest.tokenizer_dir, target)
    return target
