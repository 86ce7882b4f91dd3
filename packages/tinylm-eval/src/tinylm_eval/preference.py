"""Held-out preference accuracy and mean reward margin of any model on preference-pair shards.

The implicit DPO reward of an answer is beta * (log p_model(answer | prompt) - log p_ref(answer |
prompt)), log-probabilities summed over the answer's tokens; without a reference model it is
beta * log p_model (reference-free). A pair counts as preferred when the chosen answer's reward
is strictly higher. The same numbers for a model before and after DPO show what DPO changed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tinylm_eval.models.base import LanguageModel, Progress
from tinylm_shards import PREFERENCE_PAIRS, PairReader, ShardError, load_manifest, verify_shards

VERSION = 1
"""Bumped when the same model and pairs would score differently."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreferenceConfig:
    data: Path
    """A tinylm-preference-pairs dataset (OUT/<name> or its version directory)."""
    split: str | None = None
    """'train' or a held-out split name; None: 'validation' when the dataset has it, else train."""
    beta: float = 0.1
    """The reward scale (DPO's beta); accuracy does not depend on it, margins do."""
    batch_size: int = 8
    max_pairs: int | None = None
    """Score the first N pairs of the split only."""

    def __post_init__(self):
        if self.beta <= 0 or self.batch_size < 1:
            raise ValueError("beta must be > 0 and batch_size >= 1")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError("max_pairs must be >= 1")


def select_pairs(config: PreferenceConfig) -> tuple[PairReader, str, dict]:
    """The pairs to score (shards checked), the split's name and the dataset's manifest fields."""
    manifest = load_manifest(config.data, formats=(PREFERENCE_PAIRS,))
    verify_shards(manifest)
    split = config.split or ("validation" if "validation" in manifest.splits else "train")
    chosen = manifest if split == "train" else manifest.split(split)
    reader = PairReader(chosen, verify=False)
    if len(reader) == 0:
        raise ShardError(f"{manifest.root}: the {split} split holds no pair")
    return reader, split, {"name": manifest.name, "version": manifest.version}


def _logps(model: LanguageModel, reader: PairReader, count: int, config, progress):
    requests = []
    for index in range(count):
        pair = reader.pair(index)
        prompt = pair.prompt_ids.tolist()
        requests += [(prompt, pair.chosen_ids.tolist()), (prompt, pair.rejected_ids.tolist())]
    scores = model.loglikelihood(requests, batch_size=config.batch_size, progress=progress)
    return scores[0::2], scores[1::2]


def preference_scores(
    model: LanguageModel,
    config: PreferenceConfig,
    *,
    reference: LanguageModel | None = None,
    progress: Progress | None = None,
    pairs: tuple[PairReader, str, dict] | None = None,
) -> dict:
    """Accuracy, mean margin and the mean rewards and log-probs, TRL-named, of `model` on the
    pairs (against `reference` when given). `progress` counts scored sequences."""
    reader, split, dataset = pairs or select_pairs(config)
    count = min(len(reader), config.max_pairs or len(reader))
    chosen, rejected = _logps(model, reader, count, config, progress)
    if reference is not None:
        ref_chosen, ref_rejected = _logps(reference, reader, count, config, progress)
    else:
        ref_chosen = ref_rejected = [0.0] * count
    chosen_rewards = [config.beta * (p - r) for p, r in zip(chosen, ref_chosen, strict=True)]
    rejected_rewards = [config.beta * (p - r) for p, r in zip(rejected, ref_rejected, strict=True)]
    margins = [c - r for c, r in zip(chosen_rewards, rejected_rewards, strict=True)]
    return {
        "task": "pref",
        "task_version": VERSION,
        "model": model.identity,
        "reference": reference.identity if reference is not None else None,
        "data": dataset,
        "split": split,
        "pairs": count,
        "beta": config.beta,
        "accuracy": sum(m > 0 for m in margins) / count,
        "ties": sum(m == 0 for m in margins),
        "mean_margin": sum(margins) / count,
        "rewards/chosen": sum(chosen_rewards) / count,
        "rewards/rejected": sum(rejected_rewards) / count,
        "logps/chosen": sum(chosen) / count,
        "logps/rejected": sum(rejected) / count,
    }
