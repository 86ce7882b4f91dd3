"""The DPO family of losses over sequence log-probabilities, and those log-probabilities.

Loop-independent: a recipe calls `sequence_logps` on the model's logits for prompt + answer rows
and `preference_loss` with the policy's and the reference's values. Names follow TRL's DPOTrainer
so the numbers can be compared one to one.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from tinylm_shards import IGNORE_INDEX

LossType = Literal["sigmoid", "ipo"]


def sequence_logps(
    logits: torch.Tensor,  # (N, T, V)
    labels: torch.Tensor,  # (N, T), IGNORE_INDEX outside the answer
    *,
    length_normalised: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) log-probability of each row's labelled tokens (position t-1 predicts labels[t]),
    summed, or averaged per token when `length_normalised`; and (N,) the labelled-token counts.
    """
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    # why: bf16 logits lose the small differences DPO trains on; float64 stays float64
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
    token = torch.gather(logprobs, 2, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (N, T-1)
    summed = (token * mask).sum(dim=1)
    counts = mask.sum(dim=1)
    if length_normalised:
        return summed / counts.clamp(min=1), counts
    return summed, counts


@dataclasses.dataclass(frozen=True)
class PreferenceOutput:
    """Per pair: the loss terms and TRL's implicit rewards, beta * (policy - reference)."""

    losses: torch.Tensor  # (B,)
    chosen_rewards: torch.Tensor  # (B,), detached
    rejected_rewards: torch.Tensor  # (B,), detached


def preference_loss(
    policy_chosen: torch.Tensor,  # (B,)
    policy_rejected: torch.Tensor,  # (B,)
    reference_chosen: torch.Tensor,  # (B,)
    reference_rejected: torch.Tensor,  # (B,)
    *,
    beta: float = 0.1,
    loss_type: LossType = "sigmoid",
    label_smoothing: float = 0.0,
) -> PreferenceOutput:
    """DPO (Rafailov et al. 2023, eq. 7) with conservative label smoothing (cDPO), or IPO
    (Azar et al. 2023, eq. 17: (h - 1/(2 beta))^2 of the log-ratio difference h).

    sigmoid: -(1 - eps) logsigmoid(beta h) - eps logsigmoid(-beta h); at policy = reference,
    h = 0 and the loss is ln 2 for every eps.
    """
    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(
            -beta * h
        )
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss type {loss_type!r} (sigmoid or ipo)")
    return PreferenceOutput(
        losses=losses,
        chosen_rewards=beta * chosen_ratio.detach(),
        rejected_rewards=beta * rejected_ratio.detach(),
    )


def chosen_nll(
    logits: torch.Tensor,  # (B, T, V), the chosen rows only
    labels: torch.Tensor,  # (B, T)
) -> torch.Tensor:
    """Mean next-token negative log-likelihood over the chosen answers' tokens (RPO's term,
    Pang et al. 2024; TRL's `rpo_alpha`): keeps the chosen answer likely when both rewards fall."""
    summed, counts = sequence_logps(logits, labels)
    return -summed.sum() / counts.sum().clamp(min=1)
