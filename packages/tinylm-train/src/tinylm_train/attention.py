"""Choose the document-masked attention path: varlen kernels on CUDA, SDPA on packed positions elsewhere.

- CPU (and any device without a varlen kernel): transformers' SDPA with `attention_mask=None`
  and `position_ids` restarting per document; Qwen2 derives the block-diagonal causal mask from
  the positions (a packed sequence is detected by a position that resets to 0).
- CUDA: `flash_attention_2` when flash-attn is installed; otherwise the "tinylm_varlen"
  implementation below, which calls `torch.nn.attention.varlen.varlen_attn` with the batch's
  `cu_seqlens` (passed to the model as `cu_seq_lens_q`/`max_length_q`).
"""

from __future__ import annotations

import importlib.util
import logging

import torch

log = logging.getLogger(__name__)

VARLEN_NAME = "tinylm_varlen"


def varlen_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,  # (B, Hq, T, D)
    key: torch.Tensor,  # (B, Hkv, T, D)
    value: torch.Tensor,  # (B, Hkv, T, D)
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Causal attention inside each segment of the flattened batch, through varlen_attn."""
    from torch.nn.attention.varlen import varlen_attn

    cu_seqlens = kwargs.get("cu_seq_lens_q")
    max_seqlen = kwargs.get("max_length_q")
    if cu_seqlens is None or max_seqlen is None:
        raise ValueError(
            "tinylm_varlen attention needs cu_seq_lens_q and max_length_q in the forward call"
        )
    batch, heads, seq, dim = query.shape
    # why: varlen kernels take one flattened (total_tokens, H, D) sequence per tensor.
    q = query.transpose(1, 2).reshape(batch * seq, heads, dim)
    k = key.transpose(1, 2).reshape(batch * seq, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(batch * seq, value.shape[1], dim)
    out = varlen_attn(
        q,
        k,
        v,
        cu_seqlens,
        cu_seqlens,
        int(max_seqlen),
        int(max_seqlen),
        scale=scaling,
        window_size=(-1, 0),
        enable_gqa=k.shape[1] != heads,
    )
    return out.reshape(batch, seq, heads, dim), None  # (B, T, H, D) as transformers expects


def register_varlen_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(VARLEN_NAME, varlen_attention_forward)


def select_attention(device: torch.device | str, requested: str = "auto") -> str:
    """The attn_implementation for this device. Varlen paths are never chosen off CUDA."""
    device = torch.device(device)
    if requested != "auto":
        if requested in (VARLEN_NAME, "flash_attention_2") and device.type != "cuda":
            raise ValueError(
                f"attention {requested!r} needs a CUDA device, this run is on {device}"
            )
        if requested == VARLEN_NAME:
            register_varlen_attention()
        return requested
    if device.type != "cuda":
        return "sdpa"
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    register_varlen_attention()
    return VARLEN_NAME


def model_inputs(batch: dict, attention: str) -> dict:
    """The forward kwargs for a collated batch under the chosen attention path."""
    inputs = {
        "input_ids": batch["input_ids"],
        "position_ids": batch["position_ids"],
        "attention_mask": None,
        "use_cache": False,
    }
    if "labels" in batch:
        inputs["labels"] = batch["labels"]
    if attention in (VARLEN_NAME, "flash_attention_2"):
        cu = batch["cu_seqlens"]
        inputs |= {
            "cu_seq_lens_q": cu,
            "cu_seq_lens_k": cu,
            "max_length_q": batch["max_seqlen"],
            "max_length_k": batch["max_seqlen"],
        }
    return inputs
