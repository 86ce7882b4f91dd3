"""The `tinylm-data rag index` configuration (one YAML file), validated before any work starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import SourceConfig, _Strict, plain_label, unique_source_names


class RagSourceConfig(SourceConfig):
    """One corpus whose documents become passages: any pipeline reader, or `squad` (the
    contexts of a SQuAD-layout file). Mixture weights do not apply to an index."""

    kind: Literal["dolma", "baike_qa", "zhihu_kol", "clue", "jsonl", "parquet", "txt", "squad"] = (
        Field(description="Which reader parses the files (squad: the contexts of SQuAD layout).")
    )

    @model_validator(mode="after")
    def _no_weight(self) -> RagSourceConfig:
        if self.weight != 1.0:
            raise ValueError("weight has no meaning in an index (every passage is indexed once)")
        return self


class ChunkingConfig(_Strict):
    """How documents are cut into passages (rag/chunking.py)."""

    max_tokens: int = Field(
        128, ge=2, le=4096, description="Most BM25 tokens (bm25_tokens) in a passage."
    )
    overlap: int = Field(
        16, ge=0, description="Most tokens, of whole sentences, shared by consecutive passages."
    )

    @model_validator(mode="after")
    def _overlap_below_max(self) -> ChunkingConfig:
        if self.overlap >= self.max_tokens:
            raise ValueError(f"overlap {self.overlap} must be below max_tokens {self.max_tokens}")
        return self


class QualityEvalConfig(_Strict):
    """Retrieval quality at build time on questions with a known gold passage."""

    squad: str = Field(description="SQuAD-layout file (relative to the config) of the questions.")
    max_questions: int | None = Field(
        None, ge=1, description="Evaluate on the first N questions only (None: all)."
    )


class RagIndexConfig(_Strict):
    """Everything that determines an index (and so its version id)."""

    name: str = Field(description="Index name: the output goes to OUT/<name>/<version>/.")
    sources: list[RagSourceConfig] = Field(min_length=1)
    chunking: ChunkingConfig = ChunkingConfig()
    dedup: bool = Field(
        True, description="Drop documents and passages whose normalised text was seen before."
    )
    bm25: dict[Literal["method", "k1", "b"], float | str] = Field(
        default_factory=dict, description="bm25s parameters: method (lucene), k1 (1.5), b (0.75)."
    )
    quality: QualityEvalConfig | None = Field(
        None, description="Questions with gold passages: recall@1/5/20 and MRR at build time."
    )
    max_line_bytes: int = Field(64 << 20, ge=1024, description="Longer input lines are rejected.")

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        return plain_label(value, "index name")

    @model_validator(mode="after")
    def _unique_source_names(self) -> RagIndexConfig:
        unique_source_names(self.sources)
        return self
