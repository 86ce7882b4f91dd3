import pytest
from pydantic import BaseModel

from tinylm_train.config import ConfigError, RunConfig, load_config, shipped_configs

BASE = "output_dir: o\ndata:\n  path: d\n"


@pytest.fixture
def run_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(BASE)
    return path


def test_dotted_overrides_are_parsed_as_yaml_into_their_sections(run_yaml):
    config = load_config(
        run_yaml,
        [
            "optimisation.learning_rate=1e-4",
            "model.gradient_checkpointing=true",
            "data.per_device_batch_size=3",
            "seed=7",
        ],
    )
    assert config.optimisation.learning_rate == 1e-4
    assert config.model.gradient_checkpointing is True
    assert config.data.per_device_batch_size == 3 and config.data.path == "d"
    assert config.seed == 7
    assert config.optimisation.max_steps == 100  # untouched fields keep their defaults


def test_a_whole_section_can_be_overridden_as_a_yaml_mapping(run_yaml):
    config = load_config(run_yaml, ["checkpoint={save_steps: 5, save_total_limit: 1}"])
    assert (config.checkpoint.save_steps, config.checkpoint.save_total_limit) == (5, 1)


SHIPPED = [
    "debug",
    "dpo-sample-cpu",
    "longlora-sample-cpu",
    "sample-cpu",
    "sft-sample-cpu",
    "tinylm-0.5b-6x24gb",
    "tinylm-0.5b-8xh100",
]


def test_every_shipped_config_validates_and_is_listed():
    assert shipped_configs() == SHIPPED
    for name in shipped_configs():
        assert isinstance(load_config(name), RunConfig)
    sample = load_config("sample-cpu")
    assert (sample.model.name, sample.optimisation.max_steps, sample.data.path) == (
        "cpu-small",
        150,
        "out/sample",
    )
    assert load_config("debug").data.path == "out/sample"  # the README's first build


@pytest.mark.parametrize(
    ("name", "gpus", "deepspeed", "global_tokens", "steps_for_30b"),
    [
        ("tinylm-0.5b-6x24gb", 6, "zero2", 491_520, 61_000),
        ("tinylm-0.5b-8xh100", 8, "zero1", 524_288, 57_000),
    ],
)
def test_gpu_presets_train_the_reference_shape_at_their_global_batch(
    name, gpus, deepspeed, global_tokens, steps_for_30b
):
    config = load_config(name)
    shape = config.model.resolved_shape()
    assert (shape.hidden_size, shape.num_hidden_layers, shape.num_attention_heads) == (1024, 24, 16)
    assert (shape.intermediate_size, shape.rope_theta) == (2816, 1e6)  # Qwen1.5-0.5B
    assert config.model.bf16 is True and config.parallelism.deepspeed == deepspeed
    assert config.parallelism.world_size == gpus and config.data.block_size == 1024
    tokens = (
        config.data.per_device_batch_size
        * config.optimisation.gradient_accumulation_steps
        * gpus
        * config.data.block_size
    )
    assert tokens == global_tokens
    assert config.optimisation.max_steps == steps_for_30b
    assert 29.5e9 < tokens * config.optimisation.max_steps < 30.5e9


SHAPE = (
    "model.shape={hidden_size: 48, num_hidden_layers: 3, num_attention_heads: 6, "
    "num_key_value_heads: 2, intermediate_size: 96, rope_theta: 5.0e5, "
    "max_position_embeddings: 512, tie_word_embeddings: false}"
)


def test_a_run_config_defines_its_own_shape(run_yaml):
    config = load_config(run_yaml, [SHAPE, "model.name=my-shape"])
    shape = config.model.resolved_shape()
    assert (shape.hidden_size, shape.num_key_value_heads, shape.rope_theta) == (48, 2, 5e5)
    assert shape.tie_word_embeddings is False and config.model.label == "my-shape"
    assert load_config(run_yaml).model.resolved_shape().hidden_size == 32  # debug by default


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("hidden_size: 48", None),
        ("hidden_size: 50", r"hidden_size \(50\) must be a multiple of num_attention_heads \(6\)"),
        ("num_key_value_heads: 2", None),
        (
            "num_key_value_heads: 4",
            r"num_attention_heads \(6\) must be a multiple of num_key_value_heads \(4\)",
        ),
        ("intermediate_size: 96", None),
        ("intermediate_size: 0", r"intermediate_size must be positive, got 0"),
        ("hidden_size: 48, hiden: 1", r"model\.shape\.hiden: unknown field; did you mean"),
    ],
)
def test_an_inline_shape_is_validated(run_yaml, change, message):
    key = change.split(":")[0]
    override = SHAPE.replace(f"{key}: {SHAPE.split(key + ': ')[1].split(',')[0]}", change)
    if message is None:
        assert load_config(run_yaml, [override]).model.shape is not None
    else:
        with pytest.raises(ConfigError, match=message):
            load_config(run_yaml, [override])


def test_a_named_shape_and_an_inline_one_are_refused_together(run_yaml):
    with pytest.raises(
        ConfigError, match=r"model\.name: .*'debug' is a named shape and model.shape is given"
    ):
        load_config(run_yaml, [SHAPE, "model.name=debug"])


def test_report_to_accepts_only_known_targets(run_yaml):
    import importlib.util

    assert load_config(run_yaml).metrics.report_to == ["tensorboard"]
    with pytest.raises(ConfigError, match=r"metrics\.report_to\.0: Input should be"):
        load_config(run_yaml, ["metrics.report_to=[mlflow]"])
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ConfigError, match=r"metrics\.report_to: .*wandb is not installed"):
            load_config(run_yaml, ["metrics.report_to=[tensorboard, wandb]"])


def test_an_unknown_config_name_lists_the_shipped_ones():
    shipped = (
        "debug, dpo-sample-cpu, longlora-sample-cpu, sample-cpu, sft-sample-cpu, "
        "tinylm-0.5b-6x24gb, tinylm-0.5b-8xh100"
    )
    with pytest.raises(ConfigError, match=rf"nope is neither a file.*shipped: {shipped}"):
        load_config("nope")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimisation.max_steps=0"], r"optimisation\.max_steps: Input should be greater than 0"),
        (["optimisation.warmup_steps=500"], r"optimisation: .*warmup_steps \(500\) must be below"),
        (
            ["optimisation.lerning_rate=1"],
            r"optimisation\.lerning_rate: unknown field; did you mean optimisation\.learning_rate\?",
        ),
        (
            ["optimization.max_steps=5"],
            r"optimization: unknown section .*did you mean optimisation\?",
        ),
        (
            ["max_steps=5"],
            r"max_steps: unknown section or key; did you mean optimisation\.max_steps\?",
        ),
        (["model.attention=flex"], r"model\.attention: Input should be"),
        (["model.name=gpt-5"], r"model\.name: .*unknown model 'gpt-5'; known: cpu-small, debug"),
        (["parallelism.deepspeed=zero3"], r"parallelism\.deepspeed: .*neither zero1 nor zero2"),
        (["data.path.x=1"], r"data\.path is a value, not a section"),
        (["optimisation.max_steps"], "not key=value"),
    ],
)
def test_invalid_configs_name_the_key_path(run_yaml, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(run_yaml, overrides)


def test_a_misspelled_key_in_the_file_is_reported_with_a_suggestion(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(BASE + "checkpoint:\n  save_step: 5\n")
    with pytest.raises(ConfigError, match=r"checkpoint\.save_step: .*checkpoint\.save_steps\?"):
        load_config(path)


def test_every_mistake_is_reported_at_once(run_yaml):
    with pytest.raises(ConfigError) as info:
        load_config(run_yaml, ["model.nam=debug", "data.per_device_batch_size=0"])
    assert "model.nam" in str(info.value) and "data.per_device_batch_size" in str(info.value)


def test_the_config_is_frozen(run_yaml):
    config = load_config(run_yaml)
    with pytest.raises(ValueError, match="frozen"):
        config.optimisation.max_steps = 3


def test_every_field_is_described():
    sections = [RunConfig, *(f.annotation for f in RunConfig.model_fields.values())]
    for section in sections:
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            continue
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no description"


def test_a_shipped_deepspeed_preset_resolves_to_its_file(run_yaml):
    config = load_config(run_yaml, ["parallelism.deepspeed=zero2"])
    assert config.parallelism.deepspeed_path().endswith("ds_zero2.json")
    assert load_config(run_yaml).parallelism.deepspeed_path() is None
