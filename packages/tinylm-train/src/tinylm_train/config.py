"""The YAML run configuration, validated with pydantic, with dotted CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class RunConfig(BaseModel):
    """One pretraining run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(
        description="Shard version directory (has manifest.json) or OUT/<name> (has LATEST)."
    )
    output_dir: str = Field(description="Checkpoints, metrics and the exported model go here.")
    model: str = Field("debug", description="A name from tinylm_train.models.MODEL_SHAPES.")
    seed: int = 0
    max_steps: int = Field(100, gt=0)
    per_device_batch_size: int = Field(8, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(10, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    max_grad_norm: float = Field(1.0, gt=0)
    save_steps: int = Field(50, gt=0)
    save_total_limit: int = Field(2, gt=0)
    logging_steps: int = Field(1, gt=0)
    bf16: bool | Literal["auto"] = "auto"
    gradient_checkpointing: bool = False
    attention: Literal["auto", "sdpa", "tinylm_varlen", "flash_attention_2"] = "auto"
    deepspeed: str | None = Field(
        None, description="A DeepSpeed JSON config path, or 'zero1'/'zero2'."
    )
    record_blocks: bool = Field(
        False,
        description="Append each rank's block indices per step to blocks-rank<r>.jsonl (audits).",
    )
    peak_flops: float = Field(
        989e12, gt=0, description="Per-device peak FLOP/s for MFU (H100 bf16 dense)."
    )

    @model_validator(mode="after")
    def _warmup_fits(self) -> RunConfig:
        if self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps})"
            )
        return self


def _coerce(value: str):
    return yaml.safe_load(value)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file and apply `key=value` overrides (values parsed as YAML scalars)."""
    raw: dict = {}
    if path is not None and not Path(path).is_file():
        from importlib.resources import files

        shipped = files("tinylm_train") / "configs" / f"{path}.yaml"
        if not shipped.is_file():
            raise ValueError(f"run config {path} is neither a file nor a shipped config name")
        path = str(shipped)
    if path is not None:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a run config is a YAML mapping")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        raw[key.strip()] = _coerce(value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid run config{f' {path}' if path else ''}:\n{exc}") from exc
