"""The exported model: HF format plus a copy of the shard tokenizer's files, with a config.json
that every consumer reads the same way. An SFT export also has the dataset's chat template (in
the tokenizer files) and a generation_config.json that stops where the template's turn ends.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tinylm_shards import PACKED_BLOCKS, SFT_BLOCKS, Manifest
from tinylm_train.shards import load_manifest

TRAINING_ARGS = "training_args.bin"
GENERATION_CONFIG = "generation_config.json"


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
    if config["rope_parameters"]["rope_type"] == "linear":  # a LongLoRA model, for 4.x readers
        factor = config["rope_parameters"]["factor"]
        config["rope_scaling"] = {"type": "linear", "rope_type": "linear", "factor": factor}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def sft_generation_fields(manifest: Manifest) -> dict:
    """generation_config.json fields of an SFT dataset's model: `eos_token_id` the ids of the
    manifest's `sft.stop_tokens`, `stop_strings` its `sft.stop_strings`, and the pad id.

    Also checks that the dataset's tokenizer has a `chat_template` (an ExportError otherwise),
    so a run can check this before it trains.
    """
    from transformers import AutoTokenizer

    where = manifest.root / "manifest.json"
    sft = manifest.raw.get("sft")
    if not isinstance(sft, dict):
        raise ExportError(f"{where} has no 'sft' object: not an SFT dataset")
    stop_tokens, stop_strings = sft.get("stop_tokens"), sft.get("stop_strings", [])
    if not stop_tokens or not all(isinstance(t, str) for t in stop_tokens):
        raise ExportError(f"{where}: 'sft.stop_tokens' must be a non-empty list of tokens")
    if not isinstance(stop_strings, list) or not all(isinstance(t, str) for t in stop_strings):
        raise ExportError(f"{where}: 'sft.stop_strings' must be a list of strings")
    tokenizer = AutoTokenizer.from_pretrained(manifest.tokenizer_dir, local_files_only=True)
    if not tokenizer.chat_template:
        raise ExportError(
            f"{manifest.tokenizer_dir}: the tokenizer has no chat_template (the SFT builder "
            "writes the template into tokenizer_config.json)"
        )
    vocab = tokenizer.get_vocab()
    unknown = [t for t in stop_tokens if t not in vocab]
    if unknown:
        raise ExportError(f"{where}: sft.stop_tokens {unknown} are not tokens of the tokenizer")
    return {
        "eos_token_id": [vocab[t] for t in stop_tokens],
        "stop_strings": list(stop_strings),
        "pad_token_id": manifest.pad_id,
        "bos_token_id": manifest.eos_id,
    }


def write_generation_config(target: Path, fields: dict) -> Path:
    """The model directory's generation_config.json, with `fields` over what the model saved."""
    path = target / GENERATION_CONFIG
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config |= fields
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def finish_sft_export(target: Path, manifest: Manifest) -> Path:
    """finish_export, then the SFT generation config (stop tokens and strings, pad id)."""
    finish_export(target, manifest.tokenizer_dir)
    # why: training turns the KV cache off, and the saved generation config copies that
    write_generation_config(target, sft_generation_fields(manifest) | {"use_cache": True})
    return target


def check_checkpoint_dir(checkpoint: Path) -> None:
    """A local model directory, or an ExportError saying what is wrong (never a hub lookup)."""
    if not checkpoint.exists():
        raise ExportError(f"checkpoint {checkpoint} does not exist (give a local checkpoint-N)")
    if not checkpoint.is_dir():
        raise ExportError(f"checkpoint {checkpoint} is a file, not a checkpoint-N directory")
    if (checkpoint / "adapter_config.json").is_file():
        return
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


def export_checkpoint(
    checkpoint: str | Path, data: str | Path, target: str | Path, *, merge: bool = False
) -> Path:
    """Export a Trainer or pipeline checkpoint in HF format with the shard tokenizer's files.

    A LoRA checkpoint (adapters only) needs `merge`: its base model is loaded, resized as in
    training, and the adapters folded in. An SFT dataset's export gets the generation config.
    """
    checkpoint, target = Path(checkpoint), Path(target)
    check_checkpoint_dir(checkpoint)
    manifest = load_manifest(data, formats=(PACKED_BLOCKS, SFT_BLOCKS))
    sft = manifest.format is SFT_BLOCKS
    if sft:
        sft_generation_fields(manifest)  # why: fail before the model loads
    from tinylm_train.checkpoint import is_pipeline_checkpoint

    if is_pipeline_checkpoint(checkpoint):
        if merge:
            raise ExportError(f"--merge: {checkpoint} is a pipeline checkpoint, not LoRA adapters")
        export_pipeline_checkpoint(checkpoint, target)
        if sft:
            return finish_sft_export(target, manifest)
        return finish_export(target, manifest.tokenizer_dir)
    adapters = (checkpoint / "adapter_config.json").is_file()
    if adapters and not merge:
        raise ExportError(f"{checkpoint} holds LoRA adapters: export it with --merge")
    if merge and not adapters:
        raise ExportError(f"--merge: {checkpoint} holds no LoRA adapters (adapter_config.json)")
    if adapters:
        from tinylm_train.lora import load_merged

        model = load_merged(
            checkpoint,
            tokenizer_dir=manifest.tokenizer_dir,
            eos_id=manifest.eos_id,
            pad_id=manifest.pad_id,
        )
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(checkpoint, local_files_only=True)
    model.save_pretrained(target)
    if sft:
        return finish_sft_export(target, manifest)
    return finish_export(target, manifest.tokenizer_dir)
