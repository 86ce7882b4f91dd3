"""Shifted sparse attention (S²-Attn, LongLoRA) for Qwen2 training, leak-free on every device.

Each row of T tokens is cut into groups of G tokens (G a fraction of the context, T a multiple
of G). Half of the query heads attend causally inside the groups [0, G), [G, 2G), ...; the other
half inside groups shifted by G / 2: [0, G/2), [G/2, 3G/2), ..., [T - G/2, T), so the first and
last segments are half long. The shifted heads are never rolled (the original eager path rolls
them, which puts the last half-group and the first one in one group: early tokens see the end of
the row). Both layouts are also cut at every document boundary, so documents never share a group.

The two layouts are just two `cu_seqlens` for the causal varlen path of `attention.py`
(`causal_attention_in_segments`): one `varlen_attn` call per half of the heads on CUDA, SDPA per
segment elsewhere. With one group (G >= T) there is nothing to shift and both halves see the
ordinary causal pattern.

Training only: the exported model and generation use full attention (sdpa). transformers builds
no mask for an attention name that has no mask function (masking_utils skips it and passes
`attention_mask=None` on), which would silently drop a padding mask; so a mask function is
registered beside the attention function: it refuses a padding mask (rows are padded at the end
with their own segment, see collate.py) and otherwise leaves the causal pattern to the attention
function, which always applies it.
"""

from __future__ import annotations

import torch

from tinylm_train.models.qwen2.attention import causal_attention_in_segments

S2ATTN_NAME = "tinylm_s2attn"
LAYOUT_KEYS = ("s2_cu_plain", "s2_max_plain", "s2_cu_shifted", "s2_max_shifted")


def shifted_layouts(cu_seqlens: torch.Tensor, row_length: int, group_size: int) -> dict:
    """The S²-Attn forward kwargs: plain and shifted segment layouts over the flattened batch.

    `cu_seqlens` (S + 1,) are the document (and padding) boundaries over B x row_length tokens;
    each row ends on one. Returns `s2_cu_plain`/`s2_cu_shifted` (int32) and their longest
    segment `s2_max_plain`/`s2_max_shifted` (int).
    """
    if row_length % group_size or group_size % 2:
        raise ValueError(f"row length {row_length} is not a multiple of the group {group_size}")
    cu = cu_seqlens.to(torch.int64)
    total = int(cu[-1])
    if total % row_length:
        raise ValueError(f"{total} tokens are not whole rows of {row_length}")

    def cut(*extra: torch.Tensor) -> torch.Tensor:
        return torch.unique(torch.cat([cu, *extra])).to(torch.int32)  # sorted

    rows = torch.arange(0, total + 1, row_length)
    plain = cut(torch.arange(0, total + 1, group_size))
    if group_size >= row_length:
        shifted = plain  # why: one group has no neighbour to connect; ordinary causal
    else:
        shifted = cut(rows, torch.arange(group_size // 2, total, group_size))
    return {
        "s2_cu_plain": plain,
        "s2_max_plain": int(torch.diff(plain).max()),
        "s2_cu_shifted": shifted,
        "s2_max_shifted": int(torch.diff(shifted).max()),
    }


def s2_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,  # (B, Hq, T, D)
    key: torch.Tensor,  # (B, Hkv, T, D)
    value: torch.Tensor,  # (B, Hkv, T, D)
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """S²-Attn: heads [0, Hq/2) in the plain layout, [Hq/2, Hq) in the shifted one."""
    missing = [k for k in LAYOUT_KEYS if kwargs.get(k) is None]
    if missing:
        raise ValueError(
            f"{S2ATTN_NAME} needs the group layouts {missing} (shifted_layouts, added by the "
            "collator); it is a training attention: load the model with sdpa for inference"
        )
    batch, heads, seq, dim = query.shape
    if key.shape[2] != seq:
        raise ValueError(f"{S2ATTN_NAME} takes no KV cache ({seq} queries, {key.shape[2]} keys)")
    if heads % 2:
        raise ValueError(f"{S2ATTN_NAME} splits the heads in halves; the model has {heads}")
    kv_heads = key.shape[1]
    if kv_heads % 2:  # why: halves of the query heads must map onto halves of the kv heads
        key = key.repeat_interleave(heads // kv_heads, dim=1)
        value = value.repeat_interleave(heads // kv_heads, dim=1)
        kv_heads = heads
    q = query.transpose(1, 2).reshape(batch * seq, heads, dim)  # (N, Hq, D)
    k = key.transpose(1, 2).reshape(batch * seq, kv_heads, dim)  # (N, Hkv, D)
    v = value.transpose(1, 2).reshape(batch * seq, kv_heads, dim)
    hq, hk = heads // 2, kv_heads // 2
    halves = []
    for part, (cu, longest) in enumerate(
        (
            (kwargs["s2_cu_plain"], kwargs["s2_max_plain"]),
            (kwargs["s2_cu_shifted"], kwargs["s2_max_shifted"]),
        )
    ):
        qs = q[:, part * hq : (part + 1) * hq].contiguous()
        ks = k[:, part * hk : (part + 1) * hk].contiguous()
        vs = v[:, part * hk : (part + 1) * hk].contiguous()
        cu = cu.to(q.device)
        halves.append(causal_attention_in_segments(qs, ks, vs, cu, int(longest), scale=scaling))
    out = torch.cat(halves, dim=1)  # (N, Hq, D)
    return out.reshape(batch, seq, heads, dim), None  # (B, T, H, D) as transformers expects


def s2_attention_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    attention_mask: torch.Tensor | None = None,
    **kwargs,
) -> None:
    """The mask function of S²-Attn: no (T, T) mask, the attention applies the causal groups.

    A padding mask with a zero is refused rather than dropped.
    """
    if q_length != kv_length:
        raise ValueError(f"{S2ATTN_NAME} is for training, not cached generation (use sdpa)")
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError(
            f"{S2ATTN_NAME} takes no padding attention_mask: pad at the row end as its own "
            "segment (collate_blocks) and pass the layouts of shifted_layouts"
        )
    return None


def register_s2_attention() -> str:
    """Register the attention and its mask function with transformers; returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(S2ATTN_NAME, s2_attention_forward)
    AttentionMaskInterface.register(S2ATTN_NAME, s2_attention_mask)
    return S2ATTN_NAME
