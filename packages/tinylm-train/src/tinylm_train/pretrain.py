"""Pretraining with the HF Trainer on shard blocks: build → train → export."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch

from tinylm_train.attention import model_inputs, select_attention
from tinylm_train.collate import collate_blocks
from tinylm_train.config import RunConfig
from tinylm_train.models import build_config, count_parameters
from tinylm_train.shards import ShardReader, load_manifest

log = logging.getLogger(__name__)


class BlockDataset(torch.utils.data.IterableDataset):
    """An endless stream of blocks for this rank. The Trainer replays it on resume to the saved step."""

    def __init__(self, data: str, *, seed: int, rank: int, world_size: int) -> None:
        self.data, self.seed, self.rank, self.world_size = data, seed, rank, world_size

    def __iter__(self):
        return iter(
            ShardReader(self.data, seed=self.seed, rank=self.rank, world_size=self.world_size)
        )


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
    args = TrainingArguments(
        # why: each rank reads its own shard of blocks; never broadcast rank 0 batches.
        accelerator_config={"dispatch_batches": False},
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
        gradient_checkpointing=config.gradient_checkpointing,
        deepspeed=_deepspeed_path(config.deepspeed),
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to=["tensorboard"],
        disable_tqdm=False,
    )
    rank, world = args.process_index, args.world_size
    dataset = BlockDataset(config.data, seed=config.seed, rank=rank, world_size=world)
    tokens_per_step = (
        config.per_device_batch_size * config.gradient_accumulation_steps * manifest.block_size
    )
    fpt = flops_per_token(
        n_params, model_config.num_hidden_layers, model_config.hidden_size, manifest.block_size
    )
    metrics_path = out / "metrics.jsonl"

    class MetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.perf_counter()

        def on_log(self, args_, state, control, logs=None, **kwargs):
            if args_.process_index != 0 or not logs or "loss" not in logs:
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

    def collator(blocks):
        return model_inputs(collate_blocks(blocks), attention)

    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[MetricsCallback()],
    )
    log.info(
        "model %s: %d parameters, attention %s, %d blocks",
        config.model,
        n_params,
        attention,
        manifest.num_blocks,
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = out / "final"
    if trainer.is_world_process_zero():
        trainer.save_model(str(final))
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
