"""Training losses, called by a loop with the model's logits and the batch's labels."""

from __future__ import annotations

from collections.abc import Callable

import torch

Loss = Callable[..., torch.Tensor]
"""(logits, labels, *, num_items_in_batch) -> the loss, e.g. causal_lm_loss."""


def causal_lm_loss(
    logits: torch.Tensor,  # (B, T, V)
    labels: torch.Tensor,  # (B, T), IGNORE_INDEX where no token is predicted
    *,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Next-token cross-entropy in the HF convention (position t-1 predicts labels[t]).

    Summed and divided by `num_items_in_batch` (the labelled tokens of the whole accumulated
    batch) when given, else the mean over this batch's labelled tokens. The same function as the
    model's own loss, so a run reproduces the losses of a model given its labels.
    """
    from transformers.loss.loss_utils import ForCausalLMLoss

    return ForCausalLMLoss(logits, labels, logits.shape[-1], num_items_in_batch=num_items_in_batch)
