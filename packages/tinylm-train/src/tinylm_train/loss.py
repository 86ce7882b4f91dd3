"""Training losses, called by a loop with the model's logits and the batch's labels."""

from __future__ import annotations

from collections.abc import Callable

import torch

Loss = Callable[..., torch.Tensor]
"""(logits, labels, *, num_items_in_batch, weights=None) -> the loss, e.g. causal_lm_loss."""

LOSS_WEIGHTS = "loss_weights"
"""The batch key of per-token loss weights (B, T), aligned with labels; no model input."""


def causal_lm_loss(
    logits: torch.Tensor,  # (B, T, V)
    labels: torch.Tensor,  # (B, T), IGNORE_INDEX where no token is predicted
    *,
    num_items_in_batch: torch.Tensor | int | float | None = None,
    weights: torch.Tensor | None = None,  # (B, T) float, 0 where labels are IGNORE_INDEX
) -> torch.Tensor:
    """Next-token cross-entropy in the HF convention (position t-1 predicts labels[t]).

    Summed and divided by `num_items_in_batch` (the labelled tokens of the whole accumulated
    batch) when given, else the mean over this batch's labelled tokens. The same function as the
    model's own loss, so a run reproduces the losses of a model given its labels.

    With `weights`, each token's loss is weighted and the sum divided by `num_items_in_batch`,
    then the sum of the weights over the accumulated batch (or this batch's when None). Weights
    of 1 / (trainable tokens of the sample) give the per-sample mean, then the mean over samples.
    """
    from transformers.loss.loss_utils import ForCausalLMLoss

    if weights is None:
        return ForCausalLMLoss(
            logits, labels, logits.shape[-1], num_items_in_batch=num_items_in_batch
        )
    vocab = logits.shape[-1]
    # (B, T-1): position t-1 predicts labels[t]
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, vocab),
        labels[:, 1:].reshape(-1).to(logits.device),
        ignore_index=-100,
        reduction="none",
    )
    shifted = weights[:, 1:].reshape(-1).to(per_token.device, per_token.dtype)
    total = (per_token * shifted).sum()
    denominator = num_items_in_batch if num_items_in_batch is not None else shifted.sum()
    if torch.is_tensor(denominator):
        denominator = denominator.to(total.device, total.dtype)
    return total / denominator
