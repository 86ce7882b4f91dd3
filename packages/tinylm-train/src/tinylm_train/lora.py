"""LoRA adapters through peft (`lora:` in the run config), and merging them for export.

peft is imported here only, when a run or an export uses LoRA. Adapters go on the linear layers
of `lora.target_modules`, never on the tied embedding / head, so a merged model keeps its head
tied to its embedding. LongLoRA also trains the embeddings and every norm fully: they go to
peft's `modules_to_save` (so the adapter checkpoint holds them) with `ensure_weight_tying`, so the
head stays the embedding's copy in training and in the merged model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from tinylm_train.config import LoraSection

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"


def embedding_and_norm_modules(model: torch.nn.Module) -> list[str]:
    """Module names (the last part) of the input embedding and of every RMSNorm."""
    embedding = next(n for n, m in model.named_modules() if m is model.get_input_embeddings())
    found = {embedding.rsplit(".", 1)[-1]}
    found |= {
        n.rsplit(".", 1)[-1] for n, m in model.named_modules() if "RMSNorm" in type(m).__name__
    }
    return sorted(found)


def trainable_parameter_groups(model: torch.nn.Module) -> dict[str, list[str]]:
    """The trainable parameter names by kind: `lora`, `embeddings`, `norms`, `other`."""
    groups: dict[str, list[str]] = {"lora": [], "embeddings": [], "norms": [], "other": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if ".lora_" in name:
            groups["lora"].append(name)
        elif "embed_tokens" in name:
            groups["embeddings"].append(name)
        elif any(part.endswith("norm") for part in name.split(".")):
            groups["norms"].append(name)
        else:
            groups["other"].append(name)
    return groups


def add_lora(
    model: torch.nn.Module, section: LoraSection, *, train_embeddings_and_norms: bool = False
) -> torch.nn.Module:
    """The model wrapped with trainable LoRA adapters (its own weights frozen, except the
    embeddings and norms with `train_embeddings_and_norms`)."""
    from peft import LoraConfig, get_peft_model

    extra = embedding_and_norm_modules(model) if train_embeddings_and_norms else None
    config = LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=list(section.target_modules),
        modules_to_save=list(extra) if extra else None,  # why: peft extends the list it gets
        ensure_weight_tying=bool(extra) and bool(model.config.tie_word_embeddings),
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    log.info(
        "LoRA r=%d alpha=%g on %s%s: %d of %d parameters trainable (%.2f%%)",
        section.r,
        section.alpha,
        ", ".join(section.target_modules),
        f", fully trained: {', '.join(extra)}" if extra else "",
        trainable,
        total,
        100 * trainable / total,
    )
    groups = trainable_parameter_groups(peft_model)
    log.info(
        "trainable tensors: %s",
        ", ".join(f"{kind} {len(names)}" for kind, names in groups.items()),
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
    from tinylm_train.long_context import find_long_context, set_rope

    base = load_init_from(
        adapter_base(checkpoint),
        tokenizer_dir=tokenizer_dir,
        eos_id=eos_id,
        pad_id=pad_id,
        attention="sdpa",
    )
    long_context = find_long_context(checkpoint)
    if long_context is not None:  # why: the base is the unscaled start model
        set_rope(base, long_context["rope_parameters"], long_context["max_length"])
    return merge_lora(PeftModel.from_pretrained(base, str(checkpoint)))
