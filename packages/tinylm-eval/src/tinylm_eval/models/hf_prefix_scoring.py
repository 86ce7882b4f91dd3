"""Answer-letter scoring that runs a subject's shared few-shot prefix through the model once.

Every question of a subject shares the same header and exemplars, which with 5 shots are several
times longer than the question itself. The prefix's key/value cache is computed once, repeated over
each batch, and every row then runs only its own question tokens (right-padded; each row's answer
position is its own last real token). Scores equal `hf_scoring.score_letters` on prefix + question ids
up to float rounding.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Hashable, Sequence

import torch

from tinylm_eval.models.base import ChoicePrompt
from tinylm_eval.models.hf_scoring import (
    _batches,
    _device,
    _pad_id,
    _padded,
    letter_logits,
    prefix_cache,
    score_letters,
)

logger = logging.getLogger(__name__)


@torch.inference_mode()
def score_letters_with_prefix(
    model,
    tokenizer,
    prefix: list[int],
    questions: list[list[int]],
    letter_ids: list[int],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Per question, the logits of the four answer tokens after `prefix + question` (token ids)."""
    if any(not q for q in questions):
        raise ValueError("a question tokenizes to nothing: its answer position is undefined")
    if not prefix:
        return score_letters(model, tokenizer, questions, letter_ids, batch_size, progress)
    pad_id, device = _pad_id(tokenizer), _device(model)
    shared = prefix_cache(model, prefix, letter_ids)
    scores: list[list[float]] = [[] for _ in questions]
    for batch in _batches([len(q) for q in questions], batch_size):
        ids, mask = _padded([questions[i] for i in batch], pad_id, device)  # (B, W)
        cache = _repeated(shared, len(batch))
        picked = letter_logits(model, ids, mask, letter_ids, cache=cache, start=len(prefix))
        picked = picked.float().cpu()
        for row, i in enumerate(batch):
            scores[i] = picked[row].tolist()
        if progress:
            progress(len(batch))
    return scores


def _repeated(shared, rows: int):
    """A copy of the prefix cache over `rows` rows; each row reads the same prefix tensors."""
    cache = copy.deepcopy(shared)
    layers = getattr(cache, "layers", None)
    if layers and all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
        for layer in layers:
            # why: a view, not rows copies; the forward concatenates new keys into fresh tensors
            layer.keys = layer.keys.expand(rows, -1, -1, -1)  # (B, kv heads, P, head dim)
            layer.values = layer.values.expand(rows, -1, -1, -1)
    else:
        cache.batch_repeat_interleave(rows)
    return cache


def score_letters_by_shared_prefix(
    model,
    tokenizer,
    prompts: Sequence[ChoicePrompt],
    letter_ids: list[int],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Letter scores with one prefix pass per `shared_prefix_key`: the ids every prompt of the group
    starts with (each keeps at least its last token) run once, the rest of each prompt in batches.
    The scored ids are each prompt's own ids, so scores equal full-prompt scores up to float rounding."""
    groups: dict[Hashable, list[int]] = {}
    alone: list[int] = []
    for i, prompt in enumerate(prompts):
        if prompt.shared_prefix_key is None:
            alone.append(i)
        else:
            groups.setdefault(prompt.shared_prefix_key, []).append(i)
    scores: list[list[float]] = [[] for _ in prompts]
    for members in groups.values():
        rows = [prompts[i].ids for i in members]
        shared = _common_prefix(rows)
        got = score_letters_with_prefix(
            model,
            tokenizer,
            shared,
            [row[len(shared) :] for row in rows],
            letter_ids,
            batch_size,
            progress,
        )
        for i, row in zip(members, got, strict=True):
            scores[i] = row
    if alone:
        got = score_letters(
            model, tokenizer, [prompts[i].ids for i in alone], letter_ids, batch_size, progress
        )
        for i, row in zip(alone, got, strict=True):
            scores[i] = row
    return scores


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """The longest run of ids every row starts with, leaving each row at least one id of its own."""
    first = rows[0]
    n = min(len(row) for row in rows) - 1
    for row in rows[1:]:
        if row[:n] != first[:n]:
            n = next(j for j in range(n) if row[j] != first[j])
    return first[:n]
