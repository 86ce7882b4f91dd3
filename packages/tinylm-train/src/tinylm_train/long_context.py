"""The long-context settings of a LongLoRA run: the S²-Attn group size and the RoPE scaling.

The RoPE factor is max_length / the context the start model was actually trained at, both from
our run config (`long_context`); never from `max_position_embeddings`, which for the Qwen1.5
shape says 32768 and would give no scaling at all. The scaling is set on the model before
training (position interpolation is fine-tuned, not added afterwards) and written to the run's
`long_context.json`, so an export that merges an adapter checkpoint into its unscaled base
model applies it again. transformers 5 reads it from config.json `rope_parameters`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from tinylm_train.config import LongContextSection

log = logging.getLogger(__name__)

LONG_CONTEXT_FILE = "long_context.json"


def group_size_for(context: int, fraction: float) -> int:
    """G = fraction x context, checked: even (the shift is G / 2) and dividing the context."""
    if not 0 < fraction <= 1:
        raise ValueError(f"group fraction {fraction} is not in (0, 1]")
    group = round(context * fraction)
    if group < 2 or group % 2 or context % group:
        raise ValueError(
            f"group size {group} (= {fraction} x {context}) must be even and divide the "
            f"context {context}"
        )
    return group


def rope_parameters_for(section: LongContextSection, current: dict) -> dict:
    """The model's new `rope_parameters` from its current ones (a start model already scaled
    is refused: its trained context is not what its config's base says)."""
    if current.get("rope_type", "default") != "default":
        raise ValueError(
            f"the start model's RoPE is already {current['rope_type']!r}-scaled; extend from a "
            "model with default RoPE"
        )
    theta = current["rope_theta"]
    if section.rope == "theta":
        return {"rope_type": "default", "rope_theta": float(section.rope_theta)}
    factor = section.max_length / section.trained_context
    return {"rope_type": "linear", "factor": factor, "rope_theta": float(theta)}


def set_rope(model: torch.nn.Module, rope_parameters: dict, max_length: int) -> None:
    """Give a Qwen2ForCausalLM these `rope_parameters` (its rotary embedding rebuilt) and a
    `max_position_embeddings` of at least `max_length`."""
    config = model.config
    config.rope_parameters = dict(rope_parameters)
    config.max_position_embeddings = max(config.max_position_embeddings, max_length)
    rotary = model.model.rotary_emb
    device = rotary.inv_freq.device
    model.model.rotary_emb = type(rotary)(config=config).to(device)


def scale_rope(model: torch.nn.Module, section: LongContextSection) -> dict:
    """Apply the run's RoPE scaling to `model`; returns what long_context.json records."""
    before = dict(model.config.rope_parameters)
    params = rope_parameters_for(section, before)
    set_rope(model, params, section.max_length)
    log.info(
        "RoPE for %d tokens (trained at %d): %s (was %s)",
        section.max_length,
        section.trained_context,
        params,
        before,
    )
    return {
        "max_length": section.max_length,
        "trained_context": section.trained_context,
        "group_size": section.group_size,
        "shifted_sparse_attention": section.shifted_sparse_attention,
        "rope_parameters": params,
        "max_position_embeddings": model.config.max_position_embeddings,
    }


def write_long_context(directory: Path, record: dict) -> Path:
    path = Path(directory) / LONG_CONTEXT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def find_long_context(checkpoint: Path) -> dict | None:
    """The long_context.json of an adapter directory, or of the run above its checkpoint-N."""
    for directory in (checkpoint, checkpoint.parent):
        path = directory / LONG_CONTEXT_FILE
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None
