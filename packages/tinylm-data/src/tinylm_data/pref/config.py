"""The preference build configuration (one YAML file), validated before any work starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..sft.config import ChatBuildConfig, ChatSourceConfig

PREF_KINDS = ("dpo_zh", "ultrafeedback", "hh_rlhf")


class PrefSourceConfig(ChatSourceConfig):
    """One preference dataset (cleaning, system prompt and held-out split as for SFT)."""

    kind: Literal["dpo_zh", "ultrafeedback", "hh_rlhf"] = Field(  # type: ignore[assignment]
        description="Which reader parses the files: dpo_zh ({conversations, chosen, rejected}), "
        "ultrafeedback (prompt, chosen/rejected message lists), hh_rlhf (two full transcripts)."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Field names that differ from the kind's (conversations, prompt, chosen, "
        "rejected), e.g. {chosen: response_j}.",
    )


class PrefConfig(ChatBuildConfig):
    """Everything that determines a preference build's output (and so its version id)."""

    name: str = Field("pref", description="Dataset name: the output goes to OUT/<name>/<version>/.")
    template: Literal["tinylm", "chatml"] = Field(
        "tinylm", description="The chat template, as the SFT model was trained with."
    )
    max_length: int = Field(
        1024, ge=16, le=1 << 20, description="Tokens of prompt + the longer answer, per row."
    )
    max_prompt_length: int | None = Field(
        None,
        ge=1,
        description="Prompt tokens at most: older exchanges are dropped to fit; a pair whose last "
        "user turn (with the system prompt) alone is longer is rejected (prompt_too_long). "
        "None: no limit but max_length.",
    )
    rows_per_shard: int = Field(8192, ge=1, description="Pairs per Parquet shard.")
    dedup: bool = Field(
        True,
        description="Drop exact duplicates of prompt + both answers (normalised) across sources.",
    )
    seed: int = Field(0, description="Seed of the held-out split.")
    sources: list[PrefSourceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _prompt_leaves_room(self) -> PrefConfig:
        if self.max_prompt_length is not None and self.max_prompt_length >= self.max_length:
            raise ValueError(
                f"max_prompt_length ({self.max_prompt_length}) must be below max_length "
                f"({self.max_length}), or no answer token fits"
            )
        return self
