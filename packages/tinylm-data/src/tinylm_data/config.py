"""The build configuration: one YAML file, validated, with command-line overrides on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .filters.config import FilterConfig
from .quality.config import QualityConfig

READER_KINDS = ("dolma", "baike_qa", "zhihu_kol", "clue", "jsonl", "parquet", "txt")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """One input corpus."""

    name: str = Field(
        description="Label of the source; becomes Document.source and keys the counts."
    )
    kind: Literal["dolma", "baike_qa", "zhihu_kol", "clue", "jsonl", "parquet", "txt"] = Field(
        description="Which reader parses the files."
    )
    paths: list[str] = Field(
        min_length=1, description="Files or globs, relative to the config file."
    )
    text_field: str | None = Field(None, description="Text column for the generic readers.")
    id_field: str | None = Field(None, description="Id column for the generic readers.")
    weight: float = Field(
        1.0,
        ge=0,
        description="Mixture weight: each kept document is used floor(w) times, plus once more with "
        "probability frac(w) (seeded by document id); 0 drops the source.",
    )
    clean: list[str] | None = Field(
        None, description="Cleaning rules to apply; None means the defaults for the language."
    )
    language: Literal["auto", "zh", "en"] = Field(
        "auto", description="Language for the filters; auto detects it per document."
    )

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
    def _rules_exist(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            from .clean.rules import ordered

            ordered(value)  # raises ValueError naming the unknown rules
        return value


class NearDedupConfig(_Strict):
    """MinHash near-duplicate removal."""

    enabled: bool = False
    threshold: float = Field(
        0.8, gt=0, lt=1, description="Jaccard similarity that makes a duplicate."
    )
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    shingle: Literal["chars", "words", "words+chars"] = Field(
        "chars",
        description="Shingles: character n-grams of the normalised text (every language), "
        "word n-grams (jieba words for Chinese), or both.",
    )
    ngram_chars: int = Field(5, ge=1, le=32, description="Characters per shingle ('chars').")
    ngram: int = Field(5, ge=1, le=32, description="Words per shingle (English and others).")
    # One changed character alters a jieba word and every shingle holding it: at 5 words a
    # copy with 1% of its characters changed keeps Jaccard ~0.81, at 2 words ~0.91, while
    # documents with 8% changed stay below 0.6.
    ngram_zh: int = Field(2, ge=1, le=32, description="jieba words per shingle for Chinese.")
    verify: bool = Field(True, description="Check candidate pairs by estimated Jaccard.")
    slack: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Accept verified pairs down to threshold - slack (estimate noise).",
    )
    seed: int = 1


class DedupConfig(_Strict):
    exact: bool = Field(True, description="Remove documents whose normalised text was seen before.")
    scope: Literal["global", "source"] = Field(
        "global", description="Compare across all sources, or only within each source."
    )
    near: NearDedupConfig = NearDedupConfig()


class BuildConfig(_Strict):
    """Everything that determines a build's output (and so its version id)."""

    name: str = Field(description="Dataset name: the output goes to OUT/<name>/<version>/.")
    tokenizer: str = Field(
        "Qwen/Qwen1.5-0.5B", description="Hub name, local directory, or builtin:<name>."
    )
    block_size: int = Field(1024, ge=2, le=1 << 20)
    pack_mode: Literal["concat", "bestfit"] = "concat"
    bestfit_window: int = Field(8192, ge=1, description="Documents per best-fit-decreasing window.")
    rows_per_shard: int = Field(8192, ge=1, description="Blocks per Parquet shard.")
    sources: list[SourceConfig] = Field(min_length=1)
    filters: FilterConfig = Field(
        default_factory=FilterConfig, description="Which documents the filters drop."
    )
    dedup: DedupConfig = DedupConfig()
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="Model-based quality scorers and rules, applied after dedup.",
    )
    seed: int = Field(0, description="Seed of the mixture sampling and the validation split.")
    validation_share: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Share of the kept documents held out as the validation split (chosen by a "
        "seeded hash of the document id, never packed into training blocks); 0 disables it.",
    )
    max_line_bytes: int = Field(64 << 20, ge=1024, description="Longer input lines are rejected.")
    split_bytes: int = Field(
        128 << 20,
        ge=0,
        description="Input files larger than this are read as several stage-1 tasks (line-aligned "
        "byte ranges, Parquet row groups; gzip is read whole); 0 reads every file whole. Changes "
        "how the work is cut, never the output (not part of the version id).",
    )

    @field_validator("split_bytes")
    @classmethod
    def _split_bytes_is_off_or_sane(cls, value: int) -> int:
        if 0 < value < 1024:
            raise ValueError(f"split_bytes must be 0 (off) or at least 1024, got {value}")
        return value

    @model_validator(mode="after")
    def _unique_source_names(self) -> BuildConfig:
        unique_source_names(self.sources)
        return self

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        return plain_label(value, "dataset name")


def plain_label(value: str, what: str) -> str:
    """`value` when it can name a directory (no slashes, spaces or leading dot), else ValueError."""
    if not value or any(c in value for c in "/\\ \t\n") or value.startswith("."):
        raise ValueError(f"{what} {value!r} must be a plain label")
    return value


def unique_source_names(sources) -> None:
    """ValueError naming the source names that appear more than once."""
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")


_M = TypeVar("_M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration that cannot be used, with a message meant for the user."""


def parse_config(data: dict[str, Any], *, origin: str = "config") -> BuildConfig:
    return parse_model(BuildConfig, data, origin=origin)


def parse_model(model: type[_M], data: dict[str, Any], *, origin: str = "config") -> _M:
    """`data` validated into `model`; every mistake reported at once by its dotted key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"invalid {origin}:"]
        for err in exc.errors():
            where = ".".join(_key_path(data, err["loc"])) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _key_path(data: Any, loc: tuple) -> list[str]:
    """The error location as the dotted key a user would write: sources by name, not index."""
    path: list[str] = []
    for part in loc:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
            name = data.get("name") if isinstance(data, dict) else None
            path.append(name if isinstance(name, str) and name else str(part))
        else:
            data = data.get(part) if isinstance(data, dict) else None
            path.append(str(part))
    return path


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Dotted-key overrides (`dedup.near.enabled=True`, `sources.dolma.weight=0.5`) on raw data."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    for dotted, value in overrides.items():
        keys = dotted.split(".")
        node: Any = data
        for depth, key in enumerate(keys[:-1]):
            if isinstance(node, list):  # sources are addressed by name
                match = [
                    item for item in node if isinstance(item, dict) and item.get("name") == key
                ]
                if not match:
                    raise ConfigError(f"override {dotted}: no entry named {key!r}")
                node = match[0]
            else:
                node = node.setdefault(key, {})
            if not isinstance(node, dict | list):
                raise ConfigError(
                    f"override {dotted}: {'.'.join(keys[: depth + 1])} is not a mapping"
                )
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: cannot set a key on a list")
        node[keys[-1]] = value
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as YAML (so numbers, booleans and lists work)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} must look like key=value")
    return key.strip(), yaml.safe_load(raw)
