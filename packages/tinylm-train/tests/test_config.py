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


def test_every_shipped_config_validates_and_is_listed():
    assert shipped_configs() == ["debug", "sample-cpu"]
    for name in shipped_configs():
        assert isinstance(load_config(name), RunConfig)
    sample = load_config("sample-cpu")
    assert (sample.model.name, sample.optimisation.max_steps, sample.data.path) == (
        "cpu-small",
        150,
        "out/sample",
    )


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"nope is neither a file.*shipped: debug, sample-cpu"):
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
