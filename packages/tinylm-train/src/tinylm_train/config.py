"""The YAML run configuration in sections, validated with pydantic, with dotted CLI overrides.

A run config is `seed`, `output_dir` and one section per loop part: `model`, `data`,
`optimisation`, `checkpoint`, `metrics`, `parallelism`. A training mode that needs more (LoRA
adapters, a DPO reference model) adds its own section here. Every mistake (unknown key, bad
value, missing file) is a ConfigError naming the key path, raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import os
import typing
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tinylm_train.models.qwen2.shapes import MODEL_SHAPES, ModelShape

DEEPSPEED_PRESETS = ("zero1", "zero2")
PRESET_ZERO_STAGE = {"zero1": 1, "zero2": 2}


class ConfigError(ValueError):
    """A run config that cannot run: reported before any work, with the key path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """What is trained and how it computes."""

    shape: ModelShape | None = Field(
        None,
        description="An inline Qwen2 shape (hidden_size, num_hidden_layers, num_attention_heads, "
        "num_key_value_heads, intermediate_size, rope_theta, max_position_embeddings, "
        "tie_word_embeddings) instead of a named one.",
    )
    name: str | None = Field(
        None,
        description="A shape from tinylm_train.models.qwen2.MODEL_SHAPES ('debug' when neither "
        "name nor shape is given), or a label for `shape`.",
    )
    init_from: str | None = Field(
        None,
        description="A local HF model directory (our export, or any Qwen2 model) whose weights "
        "the run starts from instead of a fresh `name`/`shape` (SFT, continued pretraining).",
    )
    attention: Literal["auto", "sdpa", "tinylm_varlen", "flash_attention_2"] = Field(
        "auto", description="Document-masked attention path (see models/qwen2/attention.py)."
    )
    bf16: bool | Literal["auto"] = Field(
        "auto", description="bf16 mixed precision; 'auto' uses it on a CUDA device that has it."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass to save memory."
    )

    @field_validator("name")
    @classmethod
    def _known_or_label(cls, name: str | None, info: ValidationInfo) -> str | None:
        # why: `shape` is declared first, so it is in info.data when it was valid
        inline = info.data.get("shape") is not None
        if name is None:
            return name
        if not inline and name not in MODEL_SHAPES:
            known = ", ".join(sorted(MODEL_SHAPES))
            raise ValueError(f"unknown model {name!r}; known: {known} (or give model.shape)")
        if inline and name in MODEL_SHAPES:
            raise ValueError(
                f"{name!r} is a named shape and model.shape is given: keep one "
                "(a name beside an inline shape is only a label)"
            )
        return name

    @field_validator("init_from")
    @classmethod
    def _one_source(cls, init_from: str | None, info: ValidationInfo) -> str | None:
        if init_from is not None and (info.data.get("shape") or info.data.get("name")):
            raise ValueError(
                "the model's shape comes from init_from's config.json: drop model.name and "
                "model.shape, or init_from"
            )
        return init_from

    def resolved_shape(self) -> ModelShape:
        """The shape to build: the inline one, else the named one."""
        return self.shape if self.shape is not None else MODEL_SHAPES[self.name or "debug"]

    @property
    def label(self) -> str:
        if self.init_from is not None:
            return Path(self.init_from).name or self.init_from
        return self.name or ("custom" if self.shape is not None else "debug")


class DataSection(_Section):
    """The shard dataset and how each rank draws blocks from it."""

    path: str = Field(
        description="Shard version directory (has manifest.json) or OUT/<name> (has LATEST)."
    )
    per_device_batch_size: int = Field(8, gt=0, description="Blocks per device per micro-step.")
    block_size: int | None = Field(
        None, gt=0, description="The block size the run expects; another manifest's is refused."
    )
    record_blocks: bool = Field(
        False,
        description="Append each rank's block indices per step to blocks-rank<r>.jsonl (audits).",
    )


class OptimisationSection(_Section):
    """AdamW with linear warmup and cosine decay to a floor."""

    max_steps: int = Field(100, gt=0, description="Optimizer steps of the run.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-steps per step.")
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW decoupled weight decay.")
    warmup_steps: int = Field(10, ge=0, description="Linear warmup steps; below max_steps.")
    min_lr_ratio: float = Field(
        0.1, ge=0, le=1, description="The cosine ends at this fraction of learning_rate."
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")

    @model_validator(mode="after")
    def _warmup_fits(self) -> OptimisationSection:
        if self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps})"
            )
        return self


class CheckpointSection(_Section):
    """Trainer checkpoints (model, optimizer, RNG, each rank's data position)."""

    save_steps: int = Field(50, gt=0, description="Write checkpoint-N every this many steps.")
    save_total_limit: int = Field(2, gt=0, description="Keep the newest this many checkpoints.")


class MetricsSection(_Section):
    """metrics.jsonl records and the MFU they report."""

    logging_steps: int = Field(1, gt=0, description="Write a metrics record every this many steps.")
    console_steps: int = Field(10, gt=0, description="Print a log line every this many steps.")
    eval_steps: int = Field(
        50, gt=0, description="Validation loss every this many steps (with a validation split)."
    )
    peak_flops: float | None = Field(
        None,
        gt=0,
        description="Per-device peak FLOP/s for MFU; None: the CUDA device's known peak "
        "(tinylm_train.metrics.PEAK_FLOPS_BY_DEVICE), no MFU on a CPU or unknown device.",
    )
    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        ["tensorboard"], description="Where the Trainer reports scalars; wandb must be installed."
    )

    @field_validator("report_to")
    @classmethod
    def _installed(cls, targets: list[str]) -> list[str]:
        if "wandb" in targets and importlib.util.find_spec("wandb") is None:
            raise ValueError("wandb is not installed (uv pip install wandb, or drop it)")
        return targets


class ParallelismSection(_Section):
    """How the ranks share the work (data parallel; ZeRO through DeepSpeed)."""

    deepspeed: str | None = Field(
        None, description="A DeepSpeed JSON config path, or 'zero1'/'zero2' (shipped configs)."
    )
    world_size: int | None = Field(
        None, gt=0, description="The process count the run is sized for; another is refused."
    )
    engine: Literal["hf", "pipeline"] = Field(
        "hf",
        description="'hf': the HF Trainer (DDP or ZeRO). 'pipeline': DeepSpeed pipeline "
        "parallel x data parallel (loops/pipeline.py), ZeRO-1 at most.",
    )
    pipeline_stages: int = Field(
        1, gt=0, description="Pipeline stages P (engine 'pipeline'); data parallel = world / P."
    )
    partition_method: str = Field(
        "type:DecoderLayerPipe",
        description="How layers are split over the stages: 'parameters', 'uniform' or "
        "'type:<layer class>' (balance the layers of that class).",
    )
    activation_checkpoint_interval: int = Field(
        1,
        ge=1,
        description="With model.gradient_checkpointing on the pipeline: recompute every this "
        "many decoder layers as one unit.",
    )

    @field_validator("deepspeed")
    @classmethod
    def _preset_or_file(cls, value: str | None) -> str | None:
        if value is None or value in DEEPSPEED_PRESETS or Path(value).is_file():
            return value
        raise ValueError(f"{value!r} is neither {' nor '.join(DEEPSPEED_PRESETS)} nor a file")

    @field_validator("partition_method")
    @classmethod
    def _partition(cls, method: str) -> str:
        if method in ("parameters", "uniform") or (method.startswith("type:") and method[5:]):
            return method
        raise ValueError(f"{method!r} is not 'parameters', 'uniform' or 'type:<layer class>'")

    def zero_stage(self) -> int:
        """The ZeRO stage `deepspeed` asks for (0 without DeepSpeed)."""
        if self.deepspeed is None:
            return 0
        if self.deepspeed in PRESET_ZERO_STAGE:
            return PRESET_ZERO_STAGE[self.deepspeed]
        try:
            ds = json.loads(Path(self.deepspeed).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.deepspeed} is not a readable JSON file: {exc}") from exc
        return int(ds.get("zero_optimization", {}).get("stage", 0))

    @model_validator(mode="after")
    def _pipeline_fits(self) -> ParallelismSection:
        if self.engine != "pipeline":
            if self.pipeline_stages != 1:
                raise ValueError("pipeline_stages > 1 needs engine: pipeline")
            return self
        stage = self.zero_stage()
        if stage > 1:
            raise ValueError(
                f"ZeRO-{stage} cannot run with engine 'pipeline' (DeepSpeed's pipeline engine "
                "takes ZeRO 0 or 1): use deepspeed: zero1"
            )
        world = self.world_size or int(os.environ.get("WORLD_SIZE", "0")) or None
        if world is not None and world % self.pipeline_stages:
            raise ValueError(
                f"world size {world} is not divisible by pipeline_stages "
                f"{self.pipeline_stages} (data parallel = world size / stages)"
            )
        return self

    def deepspeed_path(self) -> str | None:
        """The DeepSpeed JSON file to hand the Trainer (a shipped one for a preset name)."""
        if self.deepspeed in DEEPSPEED_PRESETS:
            return str(files("tinylm_train") / "configs" / f"ds_{self.deepspeed}.json")
        return self.deepspeed


class SftSection(_Section):
    """Supervised fine-tuning on SFT shards (`tinylm-train sft`); ignored by pretraining."""

    loss_normalisation: Literal["token", "sample"] = Field(
        "token",
        description="'token': the mean over the trainable tokens of the whole accumulated "
        "batch (the HF default; invariant to packing and accumulation). 'sample': each "
        "sample's mean, then the mean over the samples of the accumulated batch (LongAlign), "
        "so long answers do not dominate.",
    )


class LoraSection(_Section):
    """LoRA adapters through peft (SFT and DPO); the export merges them into the weights."""

    r: int = Field(8, gt=0, description="Adapter rank.")
    alpha: float = Field(16.0, gt=0, description="Scale numerator: updates scale by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear layers that get adapters. The tied embedding / head never does, "
        "so the merged model keeps them tied.",
    )


class LongContextSection(_Section):
    """Long-context fine-tuning (LongLoRA: `tinylm-train longlora`, or `sft` with this section):
    S²-Attn in training, RoPE scaled for the longer context, embeddings and norms trainable
    beside the LoRA adapters."""

    max_length: int = Field(
        gt=0,
        description="The context trained at: the SFT shards' block size (built with this "
        "`max_length` and `pack_mode: none`).",
    )
    trained_context: int = Field(
        gt=0,
        description="The context the start model was actually trained at; linear RoPE scaling "
        "is max_length / trained_context (never derived from max_position_embeddings).",
    )
    group_fraction: float = Field(
        0.25, gt=0, le=1, description="S²-Attn group size as a fraction of max_length."
    )
    shifted_sparse_attention: bool = Field(
        True,
        description="Train with S²-Attn (tinylm_s2attn); false: full causal attention "
        "(the model.attention path), e.g. as the baseline.",
    )
    rope: Literal["linear", "theta"] = Field(
        "linear",
        description="'linear': position interpolation by max_length / trained_context; "
        "'theta': a larger RoPE base (`rope_theta`).",
    )
    rope_theta: float | None = Field(
        None, gt=0, description="The new RoPE base (rope: theta only)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> LongContextSection:
        from tinylm_train.long_context import group_size_for

        if self.max_length < self.trained_context:
            raise ValueError(
                f"max_length {self.max_length} is below trained_context {self.trained_context}"
            )
        if (self.rope == "theta") != (self.rope_theta is not None):
            raise ValueError("rope_theta is given with rope: theta, and only then")
        group_size_for(self.max_length, self.group_fraction)
        return self

    @property
    def group_size(self) -> int:
        from tinylm_train.long_context import group_size_for

        return group_size_for(self.max_length, self.group_fraction)


class DPOSection(_Section):
    """Direct preference optimisation (`tinylm-train dpo`) on tinylm-preference-pairs shards."""

    beta: float = Field(0.1, gt=0, description="KL strength: rewards are beta * log-ratios.")
    loss_type: Literal["sigmoid", "ipo"] = Field(
        "sigmoid", description="sigmoid (DPO, with label_smoothing: cDPO) or ipo."
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="cDPO: the share of pairs assumed mislabelled (sigmoid)."
    )
    length_normalised: bool = Field(
        False,
        description="Sequence log-probs as the mean over answer tokens instead of the sum.",
    )
    nll_weight: float = Field(
        0.0, ge=0, description="Weight of the chosen answers' NLL added to the loss (RPO)."
    )
    reference: Literal["cached", "live"] = Field(
        "cached",
        description="cached: the reference log-probs computed once before training and kept "
        "with the run (no second model in memory); live: a frozen reference forward per step.",
    )
    eval_batch_size: int = Field(
        8, gt=0, description="Pairs per forward for the reference cache and held-out accuracy."
    )

    @model_validator(mode="after")
    def _smoothing_is_sigmoid(self) -> DPOSection:
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError("label_smoothing applies to loss_type sigmoid only")
        return self


class RunConfig(_Section):
    """One training run."""

    output_dir: str = Field(description="Checkpoints, metrics and the exported model go here.")
    seed: int = Field(0, description="Seeds model initialisation and the block shuffle.")
    model: ModelSection = Field(default_factory=ModelSection, description=ModelSection.__doc__)
    data: DataSection = Field(description=DataSection.__doc__)
    optimisation: OptimisationSection = Field(
        default_factory=OptimisationSection, description=OptimisationSection.__doc__
    )
    checkpoint: CheckpointSection = Field(
        default_factory=CheckpointSection, description=CheckpointSection.__doc__
    )
    metrics: MetricsSection = Field(
        default_factory=MetricsSection, description=MetricsSection.__doc__
    )
    parallelism: ParallelismSection = Field(
        default_factory=ParallelismSection, description=ParallelismSection.__doc__
    )
    sft: SftSection = Field(default_factory=SftSection, description=SftSection.__doc__)
    lora: LoraSection | None = Field(None, description=LoraSection.__doc__)
    dpo: DPOSection | None = Field(None, description=DPOSection.__doc__)
    long_context: LongContextSection | None = Field(None, description=LongContextSection.__doc__)

    @model_validator(mode="after")
    def _stages_fit_the_model(self) -> RunConfig:
        parallel = self.parallelism
        if parallel.engine != "pipeline":
            return self
        if self.long_context is not None:
            raise ValueError("long_context: LongLoRA runs on the HF Trainer loop (engine: hf)")
        if self.model.attention == "sdpa":
            raise ValueError(
                "parallelism.engine: model.attention 'sdpa' builds its mask from the whole "
                "model's inputs; the pipeline stages need tinylm_varlen or flash_attention_2"
            )
        if "wandb" in self.metrics.report_to:
            raise ValueError(
                "parallelism.engine: the pipeline engine reports to TensorBoard and "
                "metrics.jsonl only; drop wandb from metrics.report_to"
            )
        if self.model.init_from is not None:
            return self  # why: the layer count comes from that model; checked when it loads
        layers = self.model.resolved_shape().num_hidden_layers
        if parallel.pipeline_stages > layers:
            raise ValueError(
                f"parallelism.pipeline_stages: {parallel.pipeline_stages} stages for a "
                f"{layers}-layer model (at most one stage per decoder layer)"
            )
        return self


def dpo_settings(config: RunConfig) -> DPOSection:
    """The run's dpo section (defaults when absent); ConfigError for what DPO cannot start from."""
    if config.model.init_from is None:
        raise ConfigError(
            "invalid run config:\n  model.init_from: required by tinylm-train dpo "
            "(the HF model directory of the SFT model)"
        )
    if config.parallelism.engine != "hf":
        raise ConfigError(
            "invalid run config:\n  parallelism.engine: tinylm-train dpo runs on the HF "
            "Trainer loop only (engine: hf)"
        )
    return config.dpo or DPOSection()


def shipped_configs() -> list[str]:
    """Names of the run configs that ship with the package (`--config NAME`)."""
    return sorted(
        p.name[:-5]
        for p in (files("tinylm_train") / "configs").iterdir()
        if p.name.endswith(".yaml")
    )


def _config_file(path: str | Path) -> Path:
    if Path(path).is_file():
        return Path(path)
    shipped = files("tinylm_train") / "configs" / f"{path}.yaml"
    if not shipped.is_file():
        raise ConfigError(
            f"run config {path} is neither a file nor a shipped config name "
            f"(shipped: {', '.join(shipped_configs())})"
        )
    return Path(str(shipped))


def _set_dotted(raw: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not key=value (e.g. optimisation.max_steps=300)")
    *parents, leaf = key.strip().split(".")
    node = raw
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise ConfigError(f"override {item!r}: {where} is a value, not a section")
        node = child
    node[leaf] = yaml.safe_load(value)


def _field_types(model: type) -> dict[str, Any]:
    """Field name -> annotation of a pydantic model or a dataclass (Optional unwrapped)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        annotations = {name: f.annotation for name, f in model.model_fields.items()}
    elif dataclasses.is_dataclass(model):
        annotations = {f.name: f.type for f in dataclasses.fields(model)}
    else:
        return {}
    unwrapped = {}
    for name, annotation in annotations.items():
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        unwrapped[name] = args[0] if len(args) == 1 else annotation
    return unwrapped


def _fields_at(loc: tuple) -> list[str]:
    """The field names of the section at `loc` (empty when loc is not a section)."""
    model: Any = RunConfig
    for part in loc:
        model = _field_types(model).get(part) if isinstance(part, str) else None
        if model is None:
            return []
    return list(_field_types(model))


def _suggest(loc: tuple) -> str:
    """A hint for an unknown key: the nearest field of its section, or of any section at the top."""
    key, parent = str(loc[-1]), [str(part) for part in loc[:-1]]
    fields = _fields_at(loc[:-1])
    candidates = {".".join([*parent, name]): name for name in fields}
    if not parent:  # why: a flat key from before the sections (max_steps) names its section
        for section in fields:
            candidates |= {f"{section}.{name}": name for name in _fields_at((section,))}
    by_name: dict[str, str] = {}
    for dotted, name in candidates.items():
        by_name.setdefault(name, dotted)
    close = difflib.get_close_matches(key, list(by_name), n=1)
    if close:
        return f"did you mean {by_name[close[0]]}?"
    return f"valid: {', '.join(fields)}"


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in loc) or "(top level)"
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        kind = "field" if loc[:-1] else "section or key"
        return f"{path}: unknown {kind}; {_suggest(loc)}"
    return f"{path}: {error['msg']}"


def validate_config(raw: dict, *, source: str = "run config") -> RunConfig:
    """A RunConfig from a mapping, or a ConfigError listing every mistake with its key path."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(f"  {_describe(error)}" for error in exc.errors())
        raise ConfigError(f"invalid {source}:\n{lines}") from exc


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML file (or shipped config name) and apply dotted `section.key=value` overrides.

    Override values are parsed as YAML (`model.bf16=true`, `data.path=out/x`).
    """
    raw: dict = {}
    source = "run config"
    if path is not None:
        file = _config_file(path)
        source = f"run config {path}"
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a run config is a YAML mapping")
    for item in overrides or []:
        _set_dotted(raw, item)
    return validate_config(raw, source=source)
