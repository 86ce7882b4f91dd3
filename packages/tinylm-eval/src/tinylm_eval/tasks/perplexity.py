"""Held-out perplexity over tinylm-data packed shards, with document masking (`tinylm_eval.perplexity`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinylm_eval import __version__
from tinylm_eval.block_selection import SPLITS, BlockSelection, select_blocks
from tinylm_eval.models.base import LanguageModel, Progress


class ModelKindError(TypeError):
    """A model that cannot run a task (packed-sequence scoring needs a torch module)."""


@dataclass(frozen=True, kw_only=True)
class PerplexityConfig:
    data: Path
    """A tinylm-data dataset directory (OUT/<name>, or one of its versions)."""
    batch_size: int = 4
    max_blocks: int | None = None
    """Score N blocks of the split (drawn by `block_seed`); None: all."""
    split: str | None = None
    """"train" or "validation"; None: validation when the dataset has it, else train (warned)."""
    block_seed: int | None = 0
    """Seeds the permutation the blocks are drawn in; None: dataset order."""
    max_length: int | None = None
    """Tokens per forward: a longer block is scored in windows; None: whole blocks."""
    stride: int | None = None
    """Tokens between window starts (every window predicts only tokens the last did not);
    None: `max_length` (windows side by side)."""

    def __post_init__(self):
        if self.batch_size < 1 or (self.max_blocks is not None and self.max_blocks < 1):
            raise ValueError("batch_size >= 1 and max_blocks >= 1 (or None) are required")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, not {self.max_length}")
        if self.stride is not None and (
            self.max_length is None or not 1 <= self.stride <= self.max_length
        ):
            raise ValueError("stride needs max_length and 1 <= stride <= max_length")


@dataclass(frozen=True, kw_only=True)
class PerplexityTask:
    name: str = "ppl"
    version: int = 1
    title: str = "perplexity"

    def select(self, config: PerplexityConfig) -> BlockSelection:
        """The blocks `config` scores, their shards checked: a dataset fault shows before a model loads."""
        return select_blocks(
            config.data, split=config.split, max_blocks=config.max_blocks, seed=config.block_seed
        )

    def evaluate(
        self,
        model: LanguageModel,
        config: PerplexityConfig,
        progress: Progress | None = None,
        *,
        on_total: Callable[[int], None] | None = None,
        selection: BlockSelection | None = None,
    ) -> dict:
        """{"perplexity", "mean_nll", "tokens", "blocks", "split", dataset and version, task, model}.

        `on_total` gets the number of blocks before scoring starts, `progress` the blocks scored;
        `selection` is `select(config)` when the caller has already made it.
        """
        module = getattr(model, "module", None)
        if module is None:
            raise ModelKindError(
                f"{self.name} scores packed blocks with per-document positions, which needs a "
                f"torch model (HFModel), not {type(model).__name__}"
            )
        from tinylm_eval.perplexity import perplexity

        selection = selection or self.select(config)
        if on_total:
            on_total(len(selection.indices))
        result = perplexity(
            module,
            selection,
            batch_size=config.batch_size,
            max_length=config.max_length,
            stride=config.stride,
            progress=progress,
        )
        return {
            "task": self.name,
            "task_version": self.version,
            "tinylm_eval_version": __version__,
            **result,
            "model": model.identity,
        }


TASK = PerplexityTask()
