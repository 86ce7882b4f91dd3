"""The filter settings (the `filters:` section of a build config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FilterConfig(BaseModel):
    """Which documents are dropped after cleaning. Every check but `empty` can be switched off
    (0 for the word minimums, None for the others)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_zh_words: int = Field(
        10, ge=0, description="Chinese documents need at least this many jieba words (0: off)."
    )
    min_en_words: int = Field(
        10, ge=0, description="English documents need at least this many words (0: off)."
    )
    max_chars: int | None = Field(
        1_000_000, gt=0, description="Documents longer than this many characters are dropped."
    )
    min_alnum_ratio: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="Letters, digits and Han characters among the non-space characters must be "
        "at least this share; lower means mostly symbols (tables of markup, ASCII art).",
    )
    max_duplicate_line_fraction: float | None = Field(
        0.3,
        ge=0,
        le=1,
        description="Most share of non-empty lines that repeat an earlier line (Gopher, Rae et al. "
        "2021: 0.30); boilerplate menus and spam repeat lines.",
    )
    max_word_chars: int | None = Field(
        1000,
        gt=0,
        description="English documents with a word longer than this are dropped (C4: 1000).",
    )
    min_mean_word_length: float | None = Field(
        3, gt=0, description="English mean word length lower bound (Gopher: 3)."
    )
    max_mean_word_length: float | None = Field(
        10, gt=0, description="English mean word length upper bound (Gopher: 10)."
    )
    languages: tuple[Literal["zh", "en", "other"], ...] | None = Field(
        ("zh", "en"),
        min_length=1,
        description="Keep only documents of these languages (declared by the source, or "
        "detected when it says auto); None keeps every language.",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> FilterConfig:
        low, high = self.min_mean_word_length, self.max_mean_word_length
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"min_mean_word_length ({low}) must be below max_mean_word_length ({high})"
            )
        return self
