"""Choose the document-masked attention path; every path keeps attention inside each document.

- "tinylm_varlen" (the default everywhere): the implementation below, fed the batch's
  `cu_seqlens` (passed to the model as `cu_seq_lens_q`/`max_length_q`). On CUDA one
  `torch.nn.attention.varlen.varlen_attn` call; elsewhere causal SDPA on each document alone.
- "flash_attention_2" on CUDA when flash-attn is installed (chosen by "auto" there).
- "sdpa": transformers' SDPA with `attention_mask=None` and `position_ids` restarting per
  document; Qwen2 derives the block-diagonal causal mask from the positions (a packed sequence is
  detected by a position that resets to 0). On CPU it is slower than per-document SDPA, because
  the (T, T) mask makes the kernel compute every score block (tools/bench/bench_train.py).
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
    """Causal attention inside each segment of the flattened batch.

    CUDA: one `varlen_attn` call. Elsewhere: `segmented_causal_attention`, SDPA per segment.
    Without `cu_seq_lens_q` (e.g. generation on an exported model) each row is one sequence.
    """
    batch, heads, seq, dim = query.shape
    cu_seqlens = kwargs.get("cu_seq_lens_q")
    max_seqlen = kwargs.get("max_length_q")
    if cu_seqlens is None:  # no document boundaries given: each row is one sequence
        cu_seqlens = torch.arange(0, (batch + 1) * seq, seq, dtype=torch.int32, device=query.device)
        max_seqlen = seq
    # why: varlen kernels take one flattened (total_tokens, H, D) sequence per tensor.
    q = query.transpose(1, 2).reshape(batch * seq, heads, dim)
    k = key.transpose(1, 2).reshape(batch * seq, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(batch * seq, value.shape[1], dim)
    out = causal_attention_in_segments(q, k, v, cu_seqlens, int(max_seqlen), scale=scaling)
    return out.reshape(batch, seq, heads, dim), None  # (B, T, H, D) as transformers expects


def causal_attention_in_segments(
    q: torch.Tensor,  # (N, Hq, D)
    k: torch.Tensor,  # (N, Hkv, D)
    v: torch.Tensor,  # (N, Hkv, D)
    cu_seqlens: torch.Tensor,  # (S + 1,) int32
    max_seqlen: int,
    *,
    scale: float | None = None,
) -> torch.Tensor:  # (N, Hq, D)
    """Causal attention inside each segment: one `varlen_attn` call on CUDA, else SDPA per segment."""
    if q.device.type == "cuda":
        from torch.nn.attention.varlen import varlen_attn

        return varlen_attn(
            q,
            k,
            v,
            cu_seqlens,
            cu_seqlens,
            max_seqlen,
            max_seqlen,
            scale=scale,
            window_size=(-1, 0),
            enable_gqa=k.shape[1] != q.shape[1],
        )
    return segmented_causal_attention(q, k, v, cu_seqlens, scale=scale)


def segmented_causal_attention(
    q: torch.Tensor,  # (N, Hq, D)
    k: torch.Tensor,  # (N, Hkv, D)
    v: torch.Tensor,  # (N, Hkv, D)
    cu_seqlens: torch.Tensor,  # (S + 1,)
    *,
    scale: float | None = None,
) -> torch.Tensor:  # (N, Hq, D)
    """Causal SDPA on each segment alone: the varlen contract on devices without a varlen kernel.

    why: a block-diagonal mask over the whole row makes SDPA compute every (T, T) score block,
    masked or not; attending inside each document computes only the sum of len² / 2 scores.
    """
    bounds = cu_seqlens.tolist()
    gqa = k.shape[1] != q.shape[1]
    pieces = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        # (H, L, D) per segment
        qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(
            qs, ks, vs, is_causal=True, scale=scale, enable_gqa=gqa
        )
        pieces.append(out.transpose(0, 1))
    return torch.cat(pieces)


def register_varlen_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(VARLEN_NAME, varlen_attention_forward)


def select_attention(device: torch.device | str, requested: str = "auto") -> str:
    """The attn_implementation for this device. flash_attention_2 is never chosen off CUDA."""
    device = torch.device(device)
    if requested != "auto":
        if requested == "flash_attention_2" and device.type != "cuda":
            raise ValueError(
                f"attention {requested!r} needs a CUDA device, this run is on {device}"
            )
        if requested == VARLEN_NAME:
            register_varlen_attention()
        return requested
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    register_varlen_attention()
    return VARLEN_NAME


def model_inputs(batch: dict, attention: str, *, group_size: int | None = None) -> dict:
    """The forward kwargs for a collated batch under the chosen attention path.

    `group_size`: the S²-Attn group (attention `tinylm_s2attn`, models/qwen2/shifted_sparse.py).
    """
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
    elif attention == "tinylm_s2attn":
        from tinylm_train.models.qwen2.shifted_sparse import shifted_layouts

        if group_size is None:
            raise ValueError("attention tinylm_s2attn needs the group size")
        row_length = batch["input_ids"].shape[1]
        inputs |= shifted_layouts(batch["cu_seqlens"], row_length, group_size)
    return inputs
