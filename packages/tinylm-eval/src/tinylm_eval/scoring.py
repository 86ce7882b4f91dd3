"""Batched scoring: last-position logits of the four answer tokens, or full-option log-likelihood.

Rows are right-padded and sorted by length; each row's answer position is its own last real token
(`attention_mask.sum() - 1`), so padding never shifts what is read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from tinylm_eval.data import LETTERS

logger = logging.getLogger(__name__)


class AnswerTokenError(ValueError):
    """An answer letter that the tokenizer does not spell as one token."""


def answer_token_ids(tokenizer, spellings: Sequence[str]) -> list[int]:
    """The single token id of each spelling (e.g. " A" .. " D", or "A" .. "D")."""
    ids = []
    for spelling in spellings:
        encoded = tokenizer.encode(spelling, add_special_tokens=False)
        if len(encoded) != 1:
            raise AnswerTokenError(
                f"{spelling!r} is {len(encoded)} tokens {encoded} for this tokenizer, not one"
            )
        ids.append(encoded[0])
    return ids


def _pad_id(tokenizer) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _padded(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def _device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@torch.inference_mode()
def score_letters(
    model,
    tokenizer,
    prompts: list[list[int]],
    letter_ids: list[int],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Per prompt (token ids), the logits of the four answer tokens at the prompt's last position."""
    pad_id, device = _pad_id(tokenizer), _device(model)
    scores: list[list[float]] = [[] for _ in prompts]
    letters = torch.tensor(letter_ids, device=device)
    for batch in _batches([len(p) for p in prompts], batch_size):
        ids, mask = _padded([prompts[i] for i in batch], pad_id, device)
        last = mask.sum(dim=1) - 1
        if hasattr(model, "config"):
            # Project only the distinct last positions through the LM head: (batch, k, vocab), not the
            # whole (batch, width, vocab), which dominates the cost with a large vocabulary.
            keep, where = torch.unique(last, return_inverse=True)
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
            column = where
        else:
            logits = model(input_ids=ids, attention_mask=mask).logits
            column = last
        picked = logits[torch.arange(len(batch), device=device), column][:, letters].float().cpu()
        for row, i in enumerate(batch):
            scores[i] = picked[row].tolist()
        if progress:
            progress(len(batch))
    return scores


@torch.inference_mode()
def score_options(
    model,
    tokenizer,
    prompts: list[list[int]],
    options: list[list[list[int]]],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Per prompt, the summed log-probability of each option's tokens following the prompt."""
    pad_id, device = _pad_id(tokenizer), _device(model)
    rows, owners = [], []
    for q, (prompt, opts) in enumerate(zip(prompts, options, strict=True)):
        for o, option in enumerate(opts):
            if not option:
                raise ValueError(f"question {q}: option {LETTERS[o]} tokenizes to nothing")
            rows.append((prompt, option))
            owners.append((q, o))
    scores = [[0.0] * len(LETTERS) for _ in prompts]
    for batch in _batches([len(p) + len(o) for p, o in rows], batch_size * len(LETTERS)):
        ids, mask = _padded([rows[i][0] + rows[i][1] for i in batch], pad_id, device)
        logprobs = torch.log_softmax(
            model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1
        )
        for row, i in enumerate(batch):
            prompt, option = rows[i]
            start = len(prompt)
            targets = torch.tensor(option, device=device)
            # The token at position t is predicted by the logits at t - 1.
            total = (
                logprobs[row, start - 1 : start - 1 + len(option)].gather(1, targets[:, None]).sum()
            )
            q, o = owners[i]
            scores[q][o] = float(total)
        if progress:
            progress(len(batch) // len(LETTERS))
    return scores


def predictions(scores: list[list[float]]) -> list[str]:
    """The letter of the highest score (the first on a tie)."""
    return [LETTERS[max(range(len(s)), key=s.__getitem__)] for s in scores]
