"""Model-based quality filtering: scorers (perplexity, reward, fastText), rules, the stage.

Scores are computed per input file after stage 1 (`scoring`), judged in the assembly after dedup
(`judge`), and kept for every document judged (`quality/scores.parquet` in the dataset).
"""

from .config import (
    AbsoluteRule,
    PercentileRule,
    QualityConfig,
    RelativeRule,
    ScorerConfig,
)
from .rules import band, describe

__all__ = [
    "AbsoluteRule",
    "PercentileRule",
    "QualityConfig",
    "RelativeRule",
    "ScorerConfig",
    "band",
    "describe",
]
