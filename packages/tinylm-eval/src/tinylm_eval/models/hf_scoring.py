"""Batched HF scoring: last-position logits of the answer tokens, or continuation log-likelihood.

Rows are right-padded and sorted by length; each row's answer position is its own last real token
(`attention_mask.sum() - 1`), so padding never shifts what is read.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence

import torch

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


# A forward's fixed cost (Python, dispatch, small ops) in tokens of compute: about 30-50 for
# tinylm-train's cpu-small shape on one CPU thread; for larger models it buys fewer, wider batches
# at a padding cost of at most 32 tokens a batch.
FORWARD_COST_TOKENS = 32


def _batches(
    lengths: list[int], batch_size: int, forward_cost: int = FORWARD_COST_TOKENS
) -> list[list[int]]:
    """Row indices, longest first, in batches of at most `batch_size`. Rows are sorted by length
    and cut where padded tokens (rows x longest row) plus `forward_cost` per batch are fewest: the
    exact minimum, by dynamic programming over the sorted rows."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cost = [0] + [float("inf")] * len(order)  # cost[j]: the best batching of order[:j]
    begins = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for begin in range(max(0, end - batch_size), end):
            total = cost[begin] + (end - begin) * lengths[order[begin]] + forward_cost
            if total < cost[end]:
                cost[end], begins[end] = total, begin
    batches: list[list[int]] = []
    end = len(order)
    while end:
        batches.append(order[begins[end] : end])
        end = begins[end]
    return batches[::-1]


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


# Model types whose logits are exactly `lm_head(last hidden state)` (no soft-capping or logit scale):
# for these only the four answer rows of the output projection are computed.
_PLAIN_HEAD = {"llama", "mistral", "qwen2", "qwen3"}


def _letter_projection(model, letter_ids: list[int]):
    """(decoder, weight (4, H), bias) when the logits are a plain linear map of the decoder's output."""
    if getattr(getattr(model, "config", None), "model_type", None) not in _PLAIN_HEAD:
        return None
    adapters = getattr(model, "peft_config", None) or {}
    if any(getattr(c, "is_prompt_learning", False) for c in adapters.values()):
        return None  # why: virtual tokens are added by the adapter's own forward
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    if decoder is None or type(head) is not torch.nn.Linear:
        return None
    bias = None if head.bias is None else head.bias[letter_ids]
    return decoder, head.weight[letter_ids], bias


def _cache_kwarg(module) -> str:
    """The keyword a model's forward takes its key/value cache by (`cache` from transformers 5)."""
    forward = inspect.signature(module.forward).parameters
    return "cache" if "cache" in forward else "past_key_values"


def prefix_cache(model, prefix: list[int], letter_ids: list[int]):
    """The key/value cache of `prefix` (token ids), run once."""
    projection = _letter_projection(model, letter_ids)
    target = projection[0] if projection else model
    ids = torch.tensor([prefix], device=_device(model))
    out = target(input_ids=ids, use_cache=True)
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def letter_logits(
    model,
    ids: torch.Tensor,
    mask: torch.Tensor,
    letter_ids: list[int],
    *,
    cache=None,
    start: int = 0,
) -> torch.Tensor:
    """(B, 4) logits of the answer tokens at each right-padded row's last real position.

    With `cache` (the key/value cache of `start` shared tokens, repeated over the B rows) the rows
    continue it: positions start at `start` and every row attends to all of it.
    """
    rows, width = ids.shape  # (B, W)
    last = mask.sum(dim=1) - 1  # (B,)
    projection = _letter_projection(model, letter_ids)
    target = projection[0] if projection else model
    kwargs = {}
    attention = mask
    if cache is not None:
        attention = torch.cat([mask.new_ones(rows, start), mask], dim=1)  # (B, start + W)
        positions = torch.arange(start, start + width, device=ids.device).expand(rows, -1)
        kwargs = {_cache_kwarg(target): cache, "use_cache": True, "position_ids": positions}
    out = target(input_ids=ids, attention_mask=attention, **kwargs)
    every = torch.arange(rows, device=ids.device)
    if projection:
        _, weight, bias = projection
        hidden = out.last_hidden_state[every, last]  # (B, H)
        return torch.nn.functional.linear(hidden, weight, bias)
    return out.logits[every, last][:, torch.tensor(letter_ids, device=ids.device)]


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
    for batch in _batches([len(p) for p in prompts], batch_size):
        ids, mask = _padded([prompts[i] for i in batch], pad_id, device)  # (B, W)
        picked = letter_logits(model, ids, mask, letter_ids).float().cpu()
        for row, i in enumerate(batch):
            scores[i] = picked[row].tolist()
        if progress:
            progress(len(batch))
    return scores


@torch.inference_mode()
def score_continuations(
    model,
    tokenizer,
    requests: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Per (prompt ids, continuation ids), the summed log-probability of the continuation."""
    pad_id, device = _pad_id(tokenizer), _device(model)
    for r, (_, continuation) in enumerate(requests):
        if not continuation:
            raise ValueError(f"request {r}: the continuation tokenizes to nothing")
    scores = [0.0] * len(requests)
    for batch in _batches([len(p) + len(c) for p, c in requests], batch_size):
        ids, mask = _padded([requests[i][0] + requests[i][1] for i in batch], pad_id, device)
        logprobs = torch.log_softmax(
            model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1
        )  # (B, W, V)
        for row, i in enumerate(batch):
            prompt, continuation = requests[i]
            start = len(prompt)
            targets = torch.tensor(continuation, device=device)
            # The token at position t is predicted by the logits at t - 1.
            total = (
                logprobs[row, start - 1 : start - 1 + len(continuation)]
                .gather(1, targets[:, None])
                .sum()
            )
            scores[i] = float(total)
        if progress:
            progress(len(batch))
    return scores
