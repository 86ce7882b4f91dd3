"""Pipeline settings are checked before any process group starts: exit 2 naming the key."""

import json

import pytest
from typer.testing import CliRunner

from tinylm_train.cli import app
from tinylm_train.config import ConfigError, validate_config

BASE = {"output_dir": "runs/x", "data": {"path": "out/sample"}}


def _config(**parallelism):
    return validate_config({**BASE, "parallelism": {"engine": "pipeline", **parallelism}})


def test_the_default_engine_is_hf_with_one_stage():
    config = validate_config(BASE)
    assert config.parallelism.engine == "hf"
    assert config.parallelism.pipeline_stages == 1
    assert config.parallelism.partition_method == "type:DecoderLayerPipe"


def test_wandb_is_refused_with_the_pipeline_engine(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    # why: the refusal must hold where wandb is installed; here it may not be
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "wandb" else find_spec(name, *a),
    )
    validate_config({**BASE, "metrics": {"report_to": ["wandb"]}})  # the HF engine takes it
    with pytest.raises(ConfigError, match="drop wandb"):
        validate_config(
            {**BASE, "metrics": {"report_to": ["wandb"]}, "parallelism": {"engine": "pipeline"}}
        )


def test_a_pipeline_config_validates(tmp_path):
    config = _config(pipeline_stages=2, deepspeed="zero1", partition_method="parameters")
    assert config.parallelism.zero_stage() == 1
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 0}}))
    assert _config(pipeline_stages=2, deepspeed=str(ds)).parallelism.zero_stage() == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"deepspeed": "zero2"}, "ZeRO-2 cannot run with engine 'pipeline'"),
        ({"pipeline_stages": 3}, "3 stages for a 2-layer model"),
        ({"pipeline_stages": 2, "world_size": 3}, "world size 3 is not divisible"),
        ({"partition_method": "balanced"}, "is not 'parameters', 'uniform' or 'type:"),
    ],
    ids=["zero2", "more-stages-than-layers", "world-not-divisible", "partition"],
)
def test_a_pipeline_that_cannot_run_is_a_config_error(settings, message):
    with pytest.raises(ConfigError, match=message):
        _config(**settings)


def test_a_zero3_json_file_is_refused_with_the_pipeline(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match="ZeRO-3 cannot run"):
        _config(deepspeed=str(ds))


def test_stages_need_the_pipeline_engine_and_sdpa_is_refused():
    with pytest.raises(ConfigError, match="pipeline_stages > 1 needs engine: pipeline"):
        validate_config({**BASE, "parallelism": {"pipeline_stages": 2}})
    with pytest.raises(ConfigError, match="attention 'sdpa'"):
        validate_config(
            {**BASE, "model": {"attention": "sdpa"}, "parallelism": {"engine": "pipeline"}}
        )


@pytest.mark.parametrize(
    ("overrides", "env", "key"),
    [
        (["parallelism.deepspeed=zero2"], {}, "ZeRO-2"),
        (["parallelism.pipeline_stages=4"], {}, "4 stages for a 2-layer model"),
        (["parallelism.pipeline_stages=2"], {"WORLD_SIZE": "3"}, "world size 3"),
    ],
    ids=["zero2", "stages", "world"],
)
def test_the_cli_exits_2_before_any_process_group(tmp_path, overrides, env, key, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["pretrain", "--config", "debug", "--set", "parallelism.engine=pipeline"]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert key in result.output
    assert "parallelism" in result.output
