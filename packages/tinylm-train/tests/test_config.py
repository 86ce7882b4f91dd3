import pytest

from tinylm_train.config import load_config


def test_overrides_are_parsed_as_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: d\noutput_dir: o\nmax_steps: 30\n")
    config = load_config(path, ["learning_rate=1e-4", "gradient_checkpointing=true"])
    assert config.max_steps == 30 and config.learning_rate == 1e-4 and config.gradient_checkpointing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["max_steps=0"], "max_steps"),
        (["warmup_steps=500"], "warmup_steps"),
        (["lerning_rate=1"], "lerning_rate"),
        (["attention=flex"], "attention"),
        (["max_steps"], "not key=value"),
    ],
)
def test_invalid_configs_are_clear_errors(tmp_path, overrides, message):
    path = tmp_path / "run.yaml"
    path.write_text("data: d\noutput_dir: o\n")
    with pytest.raises(ValueError, match=message):
        load_config(path, overrides)
