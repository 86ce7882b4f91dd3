"""The exported model: HF format plus a copy of the shard tokenizer's files, with a config.json
that every consumer reads the same way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tinylm_train.shards import load_manifest

TRAINING_ARGS = "training_args.bin"


class ExportError(ValueError):
    """An export that cannot start (a missing checkpoint, a directory that is no model)."""


def copy_tokenizer(tokenizer_dir: Path, target: Path) -> None:
    """Copy the tokenizer files (not subdirectories) next to an exported model."""
    target.mkdir(parents=True, exist_ok=True)
    for item in tokenizer_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)


def finish_export(target: Path, tokenizer_dir: Path) -> Path:
    """Make a saved model directory an export: tokenizer files, no pickled training arguments,
    `use_cache: true` (training turns the KV cache off) and the RoPE base written both as
    transformers-5 `rope_parameters` and the top-level `rope_theta` that 4.x readers (vLLM,
    older lm-eval installs) take, which would otherwise silently fall back to 10,000.
    """
    copy_tokenizer(tokenizer_dir, target)
    (target / TRAINING_ARGS).unlink(missing_ok=True)
    path = target / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["use_cache"] = True
    rope = config.get("rope_parameters") or {}
    theta = rope.get("rope_theta", config.get("rope_theta"))
    if theta is None:
        raise ExportError(f"{path} has no RoPE base (rope_parameters.rope_theta or rope_theta)")
    config["rope_theta"] = theta
    config["rope_parameters"] = {"rope_type": "default", **rope, "rope_theta": theta}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def check_checkpoint_dir(checkpoint: Path) -> None:
    """A local model directory, or an ExportError saying what is wrong (never a hub lookup)."""
    if not checkpoint.exists():
        raise ExportError(f"checkpoint {checkpoint} does not exist (give a local checkpoint-N)")
    if not checkpoint.is_dir():
        raise ExportError(f"checkpoint {checkpoint} is a file, not a checkpoint-N directory")
    if not (checkpoint / "config.json").is_file():
        raise ExportError(f"{checkpoint} has no config.json: not a saved model or checkpoint")


def export_pipeline_checkpoint(checkpoint: Path, target: Path) -> Path:
    """Write a pipeline engine checkpoint's weights as an HF Qwen2ForCausalLM (no tokenizer)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tinylm_train.models.qwen2.pipeline import pipeline_to_hf

    config = Qwen2Config.from_pretrained(checkpoint, local_files_only=True)
    # why: a tied head is the embedding module again; DeepSpeed saves it with layer 0 only
    count = config.num_hidden_layers + (2 if config.tie_word_embeddings else 3)
    layers = []
    for index in range(count):
        path = checkpoint / f"layer_{index:02d}-model_states.pt"
        if not path.is_file():
            raise ExportError(f"{checkpoint} lacks {path.name}: not a whole pipeline checkpoint")
        layers.append(torch.load(path, map_location="cpu", weights_only=True))
    if config.tie_word_embeddings:
        layers.append(layers[0])
    model = Qwen2ForCausalLM(config)
    model.load_state_dict(pipeline_to_hf(layers, config), strict=True)
    model.save_pretrained(target)
    return target


def export_checkpoint(checkpoint: str | Path, data: str | Path, target: str | Path) -> Path:
    """Export a Trainer or pipeline checkpoint in HF format with the shard tokenizer's files."""
    checkpoint, target = Path(checkpoint), Path(target)
    check_checkpoint_dir(checkpoint)
    manifest = load_manifest(data)

    from tinylm_train.checkpoint import is_pipeline_checkpoint

    if is_pipeline_checkpoint(checkpoint):
        export_pipeline_checkpoint(checkpoint, target)
        return finish_export(target, manifest.tokenizer_dir)

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, local_files_only=True)
    model.save_pretrained(target)
    return finish_export(target, manifest.tokenizer_dir)
