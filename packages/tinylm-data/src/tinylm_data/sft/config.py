"""The chat-data build configurations (one YAML file each), validated before any work starts.

`ChatBuildConfig` and `ChatSourceConfig` hold what SFT and preference builds share; `SftConfig`
adds packing, truncation and augmentation (`pref.config.PrefConfig` adds its prompt limit). A new
optional section is one more field on the subclass.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import _Strict, plain_label, unique_source_names
from ..rag.raft import RetrievalConfig

SFT_DEFAULT_CLEAN = ("unicode",)
"""Only NFKC and invisible characters: whitespace is meaning in code answers and poems."""


class ChatSourceConfig(_Strict):
    """One dataset of a chat-data build (its `kind` names the reader: see the subclasses)."""

    name: str = Field(description="Label of the source: prefixes sample ids and keys the counts.")
    kind: str = Field(description="Which reader parses the files.")
    paths: list[str] = Field(
        min_length=1, description="Files or globs, relative to the config file."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Field names that differ from the kind's (alpaca: instruction, input, output, "
        "system; sharegpt: conversations; messages: messages), e.g. {instruction: question}.",
    )
    clean: list[str] = Field(
        default_factory=lambda: list(SFT_DEFAULT_CLEAN),
        description="Cleaning rules applied to every turn's text (tinylm_data.clean).",
    )
    system_prompt: str | None = Field(None, description="System prompt for records without one.")
    heldout_share: float = Field(
        0.01, ge=0, lt=1, description="Share held out (seeded hash of the id)."
    )
    heldout_max: int = Field(10_000, ge=0, description="At most this many held out per source.")

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        if not value or any(c in value for c in "/\\ \t\n"):
            raise ValueError(
                f"source name {value!r} must be a non-empty label without slashes or spaces"
            )
        return value

    @field_validator("clean")
    @classmethod
    def _rules_exist(cls, value: list[str]) -> list[str]:
        from ..clean.rules import ordered

        ordered(value)  # raises ValueError naming the unknown rules
        return value


class SftSourceConfig(ChatSourceConfig):
    """One instruction dataset."""

    kind: Literal["alpaca", "sharegpt", "messages", "squad"] = Field(  # type: ignore[assignment]
        description="Which reader parses the files (squad: SQuAD-layout questions; needs retrieval)."
    )
    articles: str | None = Field(
        None, description="squad: article slice START:STOP of the file (e.g. 0:800)."
    )


class AugmentConfig(_Strict):
    """Random character deletion or repetition in user turns (training samples only)."""

    enabled: bool = True
    instruction_rate: float = Field(0.15, ge=0, le=1, description="Share of user turns changed.")
    char_rate: float = Field(
        0.1, ge=0, le=1, description="Chance per character, in a changed turn."
    )


class ChatBuildConfig(_Strict):
    """What every chat-data build has; each field is part of the output's version id."""

    name: str = Field(description="Dataset name: the output goes to OUT/<name>/<version>/.")
    tokenizer: str = Field(
        "builtin:sample", description="Hub name, local directory, or builtin:<name>."
    )
    template: Literal["tinylm", "chatml"] = Field(
        "tinylm", description="tinylm (Human:/Assistant:, default for our models) or chatml."
    )
    max_length: int = Field(2048, ge=16, le=1 << 20, description="Tokens per row.")
    rows_per_shard: int = Field(8192, ge=1, description="Rows per Parquet shard.")
    dedup: bool = Field(
        True, description="Drop exact duplicate records (normalised text) across sources."
    )
    seed: int = Field(0, description="Seed of the held-out split (and of any augmentation).")
    sources: list[ChatSourceConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        return plain_label(value, "dataset name")

    @model_validator(mode="after")
    def _unique_source_names(self) -> ChatBuildConfig:
        unique_source_names(self.sources)
        return self


class SftConfig(ChatBuildConfig):
    """Everything that determines an SFT build's output (and so its version id)."""

    name: str = Field("sft", description="Dataset name: the output goes to OUT/<name>/<version>/.")
    max_length: int = Field(
        2048, ge=16, le=1 << 20, description="Tokens per sample (8192 for long context)."
    )
    pack_mode: Literal["bestfit", "none"] = Field(
        "bestfit",
        description="bestfit: samples packed whole into rows; none: one padded sample per row.",
    )
    truncation: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Too long: keep the earliest exchanges, or the system prompt and the latest.",
    )
    bestfit_window: int = Field(8192, ge=1, description="Samples per best-fit-decreasing window.")
    dedup: bool = Field(
        True, description="Drop exact duplicate conversations (normalised text) across sources."
    )
    augment: AugmentConfig = AugmentConfig()
    seed: int = Field(0, description="Seed of the held-out split and the augmentation.")
    sources: list[SftSourceConfig] = Field(min_length=1)
    retrieval: RetrievalConfig | None = Field(
        None, description="RAFT: retrieved passages in the user turn (tinylm_data.rag.raft)."
    )

    @model_validator(mode="after")
    def _squad_needs_retrieval(self) -> SftConfig:
        if self.retrieval is None and any(s.kind == "squad" for s in self.sources):
            raise ValueError("a squad source needs a retrieval section (its passages)")
        return self
