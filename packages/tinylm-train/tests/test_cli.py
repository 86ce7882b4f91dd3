import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from tinylm_shards.testing import write_dataset
from tinylm_train.cli import app


def test_estimate_reproduces_the_planning_formula():
    result = CliRunner().invoke(app, ["estimate"])
    assert result.exit_code == 0
    days = float(result.output.split()[0])
    assert abs(days - 8 * 30e9 * 0.5e9 / (71e12 * 0.45 * 6) / 86400) < 0.01 and 6.5 < days < 7.5


def test_estimate_reverse_gives_tokens_in_a_budget():
    result = CliRunner().invoke(app, ["estimate", "--days", "7"])
    assert result.exit_code == 0
    assert 28e9 < float(result.output.split()[0]) < 32e9


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_and_help_do_not_import_torch():
    code = (
        "import sys\n"
        "import tinylm_train, tinylm_train.config\n"
        "from tinylm_train.cli import app\n"
        "sys.argv = ['tinylm-train', 'pretrain', '--help']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "heavy = sorted({'torch', 'transformers', 'deepspeed', 'matplotlib'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert "section.key=value" in done.stdout


def test_a_config_mistake_exits_non_zero_before_any_work(tmp_path):
    # why: a subprocess, to see that the error came before torch was even imported.
    code = (
        "import sys\n"
        "from tinylm_train.cli import app\n"
        f"sys.argv = ['tinylm-train', 'pretrain', '--config', 'debug', '--set', "
        f"'output_dir={tmp_path / 'run'}', '--set', 'optimisation.lerning_rate=1']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n"
        "    assert 'torch' not in sys.modules\n    raise\n"
    )
    done = _run_python(code)
    assert done.returncode == 2
    assert "optimisation.lerning_rate: unknown field" in done.stderr
    assert "did you mean optimisation.learning_rate?" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_an_unknown_config_name_lists_the_shipped_configs():
    result = CliRunner().invoke(app, ["pretrain", "--config", "nope"])
    assert result.exit_code == 2
    assert (
        "shipped: debug, dpo-sample-cpu, longlora-sample-cpu, sample-cpu, sft-sample-cpu,"
        " tinylm-0.5b-6x24gb, tinylm-0.5b-8xh100" in result.output
    )


ENTRY = Path(sys.executable).with_name("tinylm-train")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ENTRY), *args], capture_output=True, text=True, timeout=600, env=ENV, cwd=cwd
    )


def test_export_of_a_missing_checkpoint_fails_fast_with_one_line(tmp_path):
    started = time.monotonic()
    done = _cli("export", str(tmp_path / "checkpoint-9"), "--data", "d", "--out", "m")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: checkpoint {tmp_path / 'checkpoint-9'} does not exist (give a local "
        "checkpoint-N) (--debug shows the traceback)"
    )
    assert time.monotonic() - started < 30  # no hub lookup, no retries


def test_export_of_a_directory_that_is_no_model_says_so(tmp_path):
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--data", "d", "--out", "m"])
    assert result.exit_code == 2
    assert f"{tmp_path} has no config.json: not a saved model or checkpoint" in result.output


def test_a_training_failure_is_one_line_and_the_traceback_comes_with_debug(tmp_path):
    args = ["pretrain", "--config", "debug", "--set", f"data.path={tmp_path / 'nothing'}",
            "--set", f"output_dir={tmp_path / 'run'}"]  # fmt: skip
    done = _cli(*args)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {tmp_path / 'nothing'} holds neither a manifest.json nor a LATEST pointer: "
        "not a dataset (--debug shows the traceback)"
    )
    debug = _cli(*args, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ShardError" in debug.stderr


def test_the_debug_config_runs_as_shipped_with_a_readable_console(tmp_path):
    write_dataset(tmp_path / "out", num_docs=200)  # out/sample, the shipped data.path
    done = _cli("pretrain", "--config", "debug", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    for noise in ("Setting accelerator to CPU", "{'loss'", "train_runtime", "it/s]"):
        assert noise not in output
    assert re.search(r"step 10/20  loss \d+\.\d{4}  lr \d\.\d{3}e-\d\d  grad \d", output)
    assert "no validation split" in output and "MFU not reported" in output
    run = tmp_path / "runs" / "debug"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["tokens"] == 20 * 4 * 64
    assert summary["model"] == "runs/debug/final"
    assert (
        summary["final_loss"]
        == json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["loss"]
    )
    assert f"trained 20 steps, {20 * 4 * 64:,} tokens in " in done.stdout
    assert "model: runs/debug/final" in done.stdout
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert all((c / "complete.json").is_file() for c in run.glob("checkpoint-*"))
