"""DPO: preference pairs, the DPO/IPO loss on the policy's and a reference's log-probabilities,
the HF Trainer loop (ZeRO-1/2, whole checkpoints, exact resume), held-out preference accuracy.

Why not TRL's DPOTrainer: it tokenizes and pads from text columns itself, draws batches with its
own sampler and resumes by replaying them, where our contract is token ids from versioned shards
and each rank's own stream restored from the checkpoint. The loss is ours (dpo_loss.py) and its
numbers are tested against TRL's.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from tinylm_train.checkpoint import drop_skipped, find_resume_point, truncate_jsonl
from tinylm_train.config import DPOSection, RunConfig, dpo_settings
from tinylm_train.console import TrainingProgress, write_summary
from tinylm_train.distributed import barrier
from tinylm_train.dpo_data import (
    REFERENCE_CACHE,
    PairStream,
    collate_pairs,
    load_pairs_manifest,
    load_reference_cache,
    pair_logps,
    reference_fingerprint,
    save_reference_cache,
)
from tinylm_train.dpo_loss import chosen_nll, preference_loss, sequence_logps
from tinylm_train.export import finish_export
from tinylm_train.loops.hf_trainer import BlockTrainer, HFTrainerLoop
from tinylm_train.metrics import MetricsWriter, read_metrics
from tinylm_train.shards import verify_shards

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
PLOT = "preferences.png"
TRAIN_KEYS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)
"""TRL's DPOTrainer metric names, logged per step (plus nll when dpo.nll_weight > 0)."""


def _forward_logits(model, inputs: dict) -> torch.Tensor:
    return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


class PreferenceTrainer(BlockTrainer):
    """The Trainer's compute_loss and evaluate for DPO; a run sets the class attributes."""

    dpo: DPOSection
    reference_model: torch.nn.Module | None = None
    """The frozen reference of a live full fine-tuning run (None: cached, or LoRA)."""
    validation_pairs = None
    validation_reference: np.ndarray | None = None
    pad_id: int = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # why: our loss is a mean over this micro-batch's pairs; the Trainer must average the
        # micro-batches of an accumulated step (it skips that when it sees labels counted).
        self.loss_is_scaled_for_ga = False
        self._sums = torch.zeros(len(TRAIN_KEYS) + 3, dtype=torch.float64)  # + pairs, nll, tokens

    def _reference(self, model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        if "reference" in inputs:
            reference = inputs["reference"]
            return reference[:, 0], reference[:, 1]
        with torch.no_grad():
            if self.reference_model is not None:
                logits = _forward_logits(self.reference_model, inputs)
            else:  # LoRA: the base without adapters is the reference
                with self.accelerator.unwrap_model(model).disable_adapter():
                    logits = _forward_logits(model, inputs)
            logps, _ = sequence_logps(
                logits, inputs["labels"], length_normalised=self.dpo.length_normalised
            )
        return logps.chunk(2)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = _forward_logits(model, inputs)  # (2B, T, V): B chosen rows, then B rejected
        labels = inputs["labels"]
        logps, _ = sequence_logps(logits, labels, length_normalised=self.dpo.length_normalised)
        policy_chosen, policy_rejected = logps.chunk(2)
        reference_chosen, reference_rejected = self._reference(model, inputs)
        out = preference_loss(
            policy_chosen,
            policy_rejected,
            reference_chosen.to(policy_chosen.dtype),
            reference_rejected.to(policy_chosen.dtype),
            beta=self.dpo.beta,
            loss_type=self.dpo.loss_type,
            label_smoothing=self.dpo.label_smoothing,
        )
        loss = out.losses.mean()
        pairs = len(policy_chosen)
        nll = torch.zeros((), device=loss.device)
        if self.dpo.nll_weight > 0:
            nll = chosen_nll(logits[:pairs], labels[:pairs])
            loss = loss + self.dpo.nll_weight * nll
        if model.training:
            self._accumulate(out, policy_chosen, policy_rejected, nll, int(inputs["tokens"]))
        return (loss, {"logits": logits}) if return_outputs else loss

    def _accumulate(self, out, policy_chosen, policy_rejected, nll, tokens: int) -> None:
        chosen, rejected = out.chosen_rewards, out.rejected_rewards
        values = [
            chosen.sum(),
            rejected.sum(),
            (chosen > rejected).float().sum(),
            (chosen - rejected).sum(),
            policy_chosen.detach().sum(),
            policy_rejected.detach().sum(),
        ]
        pairs = len(chosen)
        self._sums += torch.tensor(
            [*(float(v.detach()) for v in values), pairs, float(nll.detach()) * pairs, tokens],
            dtype=torch.float64,
        )

    def record_extras(self, logs: dict[str, float]) -> tuple[dict, int | None]:
        """Train steps: the TRL metrics since the last record, over all ranks; held-out records:
        the eval_ scalars under val_ names. Added to `logs` too, so TensorBoard gets them."""
        if "loss" in logs:
            sums = self._sums.to(self.args.device, copy=True)
            tokens = float(sums[-1])  # this device's: MetricsWriter multiplies by world size
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(sums)
            self._sums.zero_()
            pairs = max(float(sums[-3]), 1.0)
            extra = {key: float(sums[k]) / pairs for k, key in enumerate(TRAIN_KEYS)}
            if self.dpo.nll_weight > 0:
                extra["nll"] = float(sums[-2]) / pairs
            logs.update(extra)
            return extra, int(tokens)
        if "eval_loss" in logs:
            return {
                f"val_{k[5:]}": v for k, v in logs.items() if k.startswith("eval_rewards/")
            }, None
        return {}, None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        stats = held_out_preferences(self)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in stats.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics


def held_out_preferences(trainer: PreferenceTrainer) -> dict[str, float]:
    """DPO loss, preference accuracy (share of pairs whose chosen reward is higher) and mean
    margin of the model on the validation pairs, all ranks together."""
    model, dpo = trainer.model, trainer.dpo
    reader = trainer.validation_pairs
    world = trainer.args.world_size
    indices = list(range(trainer.args.process_index, len(reader), world))
    device = trainer.args.device
    common = {
        "batch_size": dpo.eval_batch_size,
        "pad_id": trainer.pad_id,
        "device": device,
        "length_normalised": dpo.length_normalised,
        "bf16": trainer.args.bf16,
    }
    policy = pair_logps(model, reader, indices, **common)
    if trainer.validation_reference is not None:
        reference = trainer.validation_reference[indices]
    elif trainer.reference_model is not None:
        reference = pair_logps(trainer.reference_model, reader, indices, **common)
    else:
        with trainer.accelerator.unwrap_model(model).disable_adapter():
            reference = pair_logps(model, reader, indices, **common)
    policy_t, reference_t = torch.from_numpy(policy), torch.from_numpy(reference)
    out = preference_loss(
        policy_t[:, 0],
        policy_t[:, 1],
        reference_t[:, 0],
        reference_t[:, 1],
        beta=dpo.beta,
        loss_type=dpo.loss_type,
        label_smoothing=dpo.label_smoothing,
    )
    tokens = sum(
        len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids)
        for p in (reader.pair(i) for i in indices)
    )
    margins = out.chosen_rewards - out.rejected_rewards
    sums = torch.tensor(
        [
            len(indices),
            float(out.losses.sum()),
            float((margins > 0).sum()),
            float(margins.sum()),
            float(out.chosen_rewards.sum()),
            float(out.rejected_rewards.sum()),
            tokens,
        ],
        dtype=torch.float64,
        device=device,
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(sums)
    n = float(sums[0])
    return {
        "loss": float(sums[1]) / n,
        "tokens": float(sums[6]),
        "rewards/accuracies": float(sums[2]) / n,
        "rewards/margins": float(sums[3]) / n,
        "rewards/chosen": float(sums[4]) / n,
        "rewards/rejected": float(sums[5]) / n,
    }


def _load_policy(config: RunConfig, manifest) -> torch.nn.Module:
    from tinylm_train.init_from import load_init_from

    return load_init_from(
        config.model.init_from,
        tokenizer_dir=manifest.tokenizer_dir,
        eos_id=manifest.eos_id,
        pad_id=manifest.pad_id,
        attention="sdpa",
    )


def _reference_arrays(
    config: RunConfig, dpo: DPOSection, model, manifest, held_out, *, loop, device
) -> dict[str, np.ndarray]:
    """The initial model's log-probs of every pair, computed once (rank 0) and cached in
    output_dir; a resumed run, or a rerun with the same data and model, reads them back."""
    from tinylm_shards import PairReader

    path = Path(config.output_dir) / REFERENCE_CACHE
    fingerprint = reference_fingerprint(
        manifest, init_from=config.model.init_from, length_normalised=dpo.length_normalised
    )
    if loop.is_main and load_reference_cache(path, fingerprint) is None:
        common = {
            "batch_size": dpo.eval_batch_size,
            "pad_id": manifest.pad_id,
            "device": device,
            "length_normalised": dpo.length_normalised,
            "bf16": loop.args.bf16,
        }
        model.to(device)
        train = PairReader(manifest, verify=False)
        arrays = {"train": pair_logps(model, train, range(len(train)), **common)}
        if held_out is not None:
            reader = PairReader(held_out, verify=False)
            arrays["validation"] = pair_logps(model, reader, range(len(reader)), **common)
        save_reference_cache(path, fingerprint, arrays)
        log.info("reference log-probs of %d pairs cached in %s", len(train), path)
    barrier()
    arrays = load_reference_cache(path, fingerprint)
    if arrays is None:
        raise RuntimeError(f"{path}: the reference cache rank 0 wrote cannot be read")
    return arrays


def _export_tokenizer(init_from: str, manifest, out: Path) -> Path:
    """The tokenizer files (chat template included) of the model DPO started from, else the
    pairs' own tokenizer."""
    from transformers import AutoTokenizer

    target = out / "tokenizer"
    try:
        AutoTokenizer.from_pretrained(init_from).save_pretrained(str(target))
    except (OSError, ValueError):
        return manifest.tokenizer_dir
    return target


def run_dpo(config: RunConfig, *, resume: bool = False) -> Path:
    """DPO per `config`; returns the exported model directory (summary.json beside it)."""
    dpo = dpo_settings(config)
    manifest = load_pairs_manifest(config.data.path)
    held_out = manifest.split("validation") if "validation" in manifest.splits else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loop = HFTrainerLoop(config, device=device, validation=held_out is not None)
    rank, world = loop.rank, loop.world_size
    planned = config.parallelism.world_size
    if planned is not None and planned != world:
        raise RuntimeError(
            f"parallelism.world_size is {planned} but {world} processes were started"
        )
    if loop.is_main:
        verify_shards(manifest)  # once per dataset, splits included
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    point = find_resume_point(out, rank=rank, world_size=world) if resume else None
    if point is not None:
        barrier()  # why: every rank has chosen before rank 0 removes what they skipped
        if loop.is_main:
            drop_skipped(point)
            truncate_jsonl(metrics_path, point.step)

    torch.manual_seed(config.seed)
    model = _load_policy(config, manifest)
    arrays: dict[str, np.ndarray] = {}
    if dpo.reference == "cached":
        arrays = _reference_arrays(
            config, dpo, model, manifest, held_out, loop=loop, device=loop.args.device
        )
    if config.lora is not None:
        from tinylm_train.lora import add_lora

        model = add_lora(model, config.lora)
    reference_model = None
    if dpo.reference == "live" and config.lora is None:
        reference_model = _load_policy(config, manifest).to(loop.args.device)
        reference_model.eval().requires_grad_(False)

    dataset = PairStream(
        manifest, seed=config.seed, rank=rank, world_size=world, reference=arrays.get("train")
    )
    if point is not None:
        dataset.load_state_dict(point.data_state)
    validation = None
    if held_out is not None:
        from tinylm_shards import PairReader

        validation = PairReader(held_out, verify=False)
        log.info(
            "validation split: %d pairs, accuracy every %d steps",
            len(validation),
            config.metrics.eval_steps,
        )
    accumulation = config.optimisation.gradient_accumulation_steps
    metrics = (
        MetricsWriter(
            metrics_path,
            tokens_per_step=config.data.per_device_batch_size
            * accumulation
            * 2
            * manifest.block_size,
            flops_per_token=0.0,
            peak_flops=None,
            world_size=world,
            logging_steps=config.metrics.logging_steps,
        )
        if loop.is_main
        else None
    )
    trainer_class = type(
        "DPOTrainer",
        (PreferenceTrainer,),
        {
            "dpo": dpo,
            "reference_model": reference_model,
            "validation_pairs": validation,
            "validation_reference": arrays.get("validation"),
            "pad_id": manifest.pad_id,
        },
    )
    log.info(
        "DPO %s (beta %g) from %s: %d pairs, reference %s%s, rank %d of %d",
        dpo.loss_type,
        dpo.beta,
        config.model.init_from,
        len(dataset.reader),
        dpo.reference,
        ", LoRA" if config.lora else "",
        rank,
        world,
    )
    loop.train(
        model,
        dataset=dataset,
        collator=functools.partial(collate_pairs, pad_id=manifest.pad_id),
        loss=None,
        metrics=metrics,
        progress=TrainingProgress(
            max_steps=config.optimisation.max_steps, every=config.metrics.console_steps
        )
        if loop.is_main
        else None,
        validation=validation,
        resume=point,
        trainer_class=trainer_class,
    )
    final = out / "final"
    if config.lora is None:
        loop.save_model(final)
    elif loop.is_main:
        from tinylm_train.lora import merge_lora

        merge_lora(loop.trainer.accelerator.unwrap_model(loop.trainer.model)).save_pretrained(
            str(final)
        )
    barrier()
    if loop.is_main:
        finish_export(final, _export_tokenizer(config.model.init_from, manifest, out))
        plot_preferences(metrics_path, out / PLOT)
        write_summary(out / SUMMARY, _summary(config, metrics, final))
    return final


def _summary(config: RunConfig, metrics: MetricsWriter, final: Path) -> dict:
    records = read_metrics(metrics.path)
    train = [r for r in records if "loss" in r]
    held = [r for r in records if "val_loss" in r]
    seconds = metrics.elapsed
    return {
        "steps": config.optimisation.max_steps,
        "train_seconds": seconds,
        "tokens_per_s": (sum(r["tokens_per_s"] for r in train) / len(train)) if train else 0.0,
        "final_loss": train[-1]["loss"] if train else None,
        "final_val_loss": held[-1]["val_loss"] if held else None,
        "final_rewards/accuracies": train[-1].get("rewards/accuracies") if train else None,
        "final_rewards/margins": train[-1].get("rewards/margins") if train else None,
        "final_val_rewards/accuracies": held[-1].get("val_rewards/accuracies") if held else None,
        "final_val_rewards/margins": held[-1].get("val_rewards/margins") if held else None,
        "model": str(final),
        "metrics": str(metrics.path),
    }


def plot_preferences(metrics_path: Path, png: Path) -> None:
    """Reward margins and preference accuracy over steps (train, and held-out when present)."""
    records = read_metrics(metrics_path)
    train = [r for r in records if "rewards/margins" in r]
    held = [r for r in records if "val_rewards/margins" in r]
    if not train:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (margins, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r["step"] for r in train]
    margins.plot(steps, [r["rewards/margins"] for r in train], label="train")
    accuracy.plot(steps, [r["rewards/accuracies"] for r in train], label="train")
    if held:
        held_steps = [r["step"] for r in held]
        margins.plot(held_steps, [r["val_rewards/margins"] for r in held], "o-", label="held-out")
        accuracy.plot(
            held_steps, [r["val_rewards/accuracies"] for r in held], "o-", label="held-out"
        )
    margins.set(xlabel="step", ylabel="rewards/margins")
    accuracy.set(xlabel="step", ylabel="rewards/accuracies", ylim=(-0.05, 1.05))
    for ax in (margins, accuracy):
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
