"""Held-out perplexity over tinylm-data packed shards, with document masking (`tinylm_eval.perplexity`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinylm_eval import __version__
from tinylm_eval.models.base import LanguageModel


class ModelKindError(TypeError):
    """A model that cannot run a task (packed-sequence scoring needs a torch module)."""


@dataclass(frozen=True, kw_only=True)
class PerplexityConfig:
    data: Path
    """A tinylm-data dataset directory (OUT/<name>, or one of its versions)."""
    batch_size: int = 4
    max_blocks: int | None = None
    """Score only the first N blocks; None: all."""

    def __post_init__(self):
        if self.batch_size < 1 or (self.max_blocks is not None and self.max_blocks < 1):
            raise ValueError("batch_size >= 1 and max_blocks >= 1 (or None) are required")


@dataclass(frozen=True, kw_only=True)
class PerplexityTask:
    name: str = "ppl"
    version: int = 1
    title: str = "perplexity"

    def evaluate(self, model: LanguageModel, config: PerplexityConfig) -> dict:
        """{"perplexity", "mean_nll", "tokens", "blocks", dataset and version, task, model}."""
        module = getattr(model, "module", None)
        if module is None:
            raise ModelKindError(
                f"{self.name} scores packed blocks with per-document positions, which needs a "
                f"torch model (HFModel), not {type(model).__name__}"
            )
        from tinylm_eval.perplexity import perplexity

        result = perplexity(
            module, config.data, batch_size=config.batch_size, max_blocks=config.max_blocks
        )
        return {
            "task": self.name,
            "task_version": self.version,
            "tinylm_eval_version": __version__,
            **result,
            "model": model.identity,
        }


TASK = PerplexityTask()
