"""The exported model: HF format plus a copy of the shard tokenizer's files."""

from __future__ import annotations

import shutil
from pathlib import Path

from tinylm_train.shards import load_manifest


def copy_tokenizer(tokenizer_dir: Path, target: Path) -> None:
    """Copy the tokenizer files (not subdirectories) next to an exported model."""
    target.mkdir(parents=True, exist_ok=True)
    for item in tokenizer_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)


def export_checkpoint(checkpoint: str | Path, data: str | Path, target: str | Path) -> Path:
    """Export a Trainer checkpoint in HF format with the shard tokenizer's files."""
    from transformers import AutoModelForCausalLM

    manifest = load_manifest(data)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    target = Path(target)
    model.save_pretrained(target)
    copy_tokenizer(manifest.tokenizer_dir, target)
    return target
