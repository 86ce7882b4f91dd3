"""LoRA adapters through peft (`lora:` in the run config), and merging them for export.

peft is imported here only, when a run or an export uses LoRA. Adapters go on the linear layers
of `lora.target_modules`, never on the tied embedding / head, so a merged model keeps its head
tied to its embedding.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from tinylm_train.config import LoraSection

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


def add_lora(model: torch.nn.Module, section: LoraSection) -> torch.nn.Module:
    """The model wrapped with trainable LoRA adapters (its own weights frozen)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=list(section.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    log.info(
        "LoRA r=%d alpha=%g on %s: %d of %d parameters trainable (%.2f%%)",
        section.r,
        section.alpha,
        ", ".join(section.target_modules),
        trainable,
        total,
        100 * trainable / total,
    )
    return peft_model


def merge_lora(peft_model: torch.nn.Module) -> torch.nn.Module:
    """The base model with the adapters folded into its weights; refuses a head that came untied."""
    merged = peft_model.merge_and_unload()
    head, embedding = merged.get_output_embeddings(), merged.get_input_embeddings()
    if merged.config.tie_word_embeddings and head.weight is not embedding.weight:
        raise RuntimeError("the merged model's head is no longer tied to its embedding")
    return merged


def is_adapter_dir(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def adapter_base(path: Path) -> Path:
    """The base model directory an adapter checkpoint was trained on."""
    config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base or not (Path(base) / "config.json").is_file():
        raise FileNotFoundError(
            f"{path / ADAPTER_CONFIG}: its base model {base!r} is not a local model directory"
        )
    return Path(base)


def load_merged(
    checkpoint: Path, *, tokenizer_dir: Path, eos_id: int, pad_id: int
) -> torch.nn.Module:
    """An adapter checkpoint's base model (resized as in training) with its adapters merged."""
    from peft import PeftModel

    from tinylm_train.init_from import load_init_from

    base = load_init_from(
        adapter_base(checkpoint),
        tokenizer_dir=tokenizer_dir,
        eos_id=eos_id,
        pad_id=pad_id,
        attention="sdpa",
    )
    return merge_lora(PeftModel.from_pretrained(base, str(checkpoint)))
