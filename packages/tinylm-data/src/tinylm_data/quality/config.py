"""The `quality` section of a build config: scorers, each with a threshold rule."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCORER_KINDS = ("perplexity", "reward", "classifier")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AbsoluteRule(_Strict):
    """Keep documents whose score lies in [min, max] (a missing bound is open)."""

    type: Literal["absolute"]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> AbsoluteRule:
        if self.min is None and self.max is None:
            raise ValueError("an absolute rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class PercentileRule(_Strict):
    """Keep a percentile band of each group's scores (CCNet's head/middle/tail buckets)."""

    type: Literal["percentile"]
    low: float = Field(0.0, ge=0, le=100, description="Lower percentile kept (0: no lower cut).")
    high: float = Field(100.0, ge=0, le=100, description="Upper percentile kept (100: none).")
    per: Literal["source", "language", "all"] = Field(
        "source", description="Which documents a percentile is taken over."
    )

    @model_validator(mode="after")
    def _ordered(self) -> PercentileRule:
        if self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self


class RelativeRule(_Strict):
    """Keep scores within [low, high] times the median of the group's scores.

    Unlike a percentile band it removes nothing from a corpus without outliers, and the share
    it removes follows the share of junk, whatever the scale of the scorer.
    """

    type: Literal["relative"]
    low: float = Field(0.0, ge=0, description="Lower bound as a multiple of the median.")
    high: float | None = Field(None, gt=0, description="Upper bound as a multiple of the median.")
    per: Literal["source", "language", "all"] = "source"

    @model_validator(mode="after")
    def _ordered(self) -> RelativeRule:
        if self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        if self.low == 0 and self.high is None:
            raise ValueError("a relative rule needs low > 0, high, or both")
        return self


Rule = Annotated[AbsoluteRule | PercentileRule | RelativeRule, Field(discriminator="type")]

# Perplexity: junk is far above the median (shuffled words, spam, menus, mixed scripts: 40x
# and more under a small reference model, `test_quality_separation.py`) or far below it
# (boilerplate a large model predicts from the context); clean text stays within 4x (p95 of the
# clean sample paragraphs: 4x the median). Classifier: the positive class's probability.
DEFAULT_RULES: dict[str, AbsoluteRule | PercentileRule | RelativeRule] = {
    "perplexity": RelativeRule(type="relative", low=0.1, high=4.0),
    "reward": PercentileRule(type="percentile", low=10.0),
    "classifier": AbsoluteRule(type="absolute", min=0.5),
}


class ScorerConfig(_Strict):
    """One model that scores documents, and the rule that decides which ones stay."""

    kind: Literal["perplexity", "reward", "classifier"] = Field(
        description="perplexity (HF causal LM), reward (HF sequence classifier), classifier "
        "(fastText)."
    )
    model: str = Field(
        description="Model directory (perplexity, reward) or fastText .bin file / the directory "
        "`quality train` wrote (classifier); relative to the config file."
    )
    name: str = Field("", description="Label in stats, rejects and the score table; default kind.")
    rule: Rule | None = Field(None, description="Which scores stay; default per kind.")
    sources: list[str] | None = Field(
        None, description="Sources this scorer judges (default: all); others pass untouched."
    )
    max_tokens: int = Field(512, ge=2, le=1 << 20, description="Model tokens scored per document.")
    max_chars: int = Field(20_000, ge=1, description="Characters of each document scored.")
    batch_size: int = Field(8, ge=1, le=4096, description="Documents per forward pass.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    pair: bool = Field(
        False,
        description="reward: score (question, answer): the first line of a document is the "
        "question, the rest the answer (baike_qa, zhihu_kol).",
    )
    label: str = Field(
        "__label__hq", description="classifier: the label whose probability is the score."
    )
    label_index: int | None = Field(
        None, ge=0, description="reward: the logit used (default 0 for one label, else the last)."
    )

    @property
    def label_name(self) -> str:
        return self.name or self.kind

    @property
    def effective_rule(self) -> AbsoluteRule | PercentileRule | RelativeRule:
        return self.rule if self.rule is not None else DEFAULT_RULES[self.kind]

    @model_validator(mode="after")
    def _options_fit_kind(self) -> ScorerConfig:
        if self.pair and self.kind != "reward":
            raise ValueError("pair applies to reward scorers only")
        name = self.label_name
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"scorer name {name!r} must be letters, digits, - or _")
        return self


class QualityConfig(_Strict):
    """Model-based quality filtering, after dedup and before packing."""

    scorers: list[ScorerConfig] = Field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.scorers)

    @model_validator(mode="after")
    def _unique_names(self) -> QualityConfig:
        names = [s.label_name for s in self.scorers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"scorer names must be unique (set name:); repeated: {repeated}")
        return self

    def text_chars(self) -> int:
        """Characters of each document that stage 1 keeps for the scorers."""
        return max((s.max_chars for s in self.scorers), default=0)
