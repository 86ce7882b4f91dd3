import subprocess
import sys

from typer.testing import CliRunner

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
    assert "shipped: debug, sample-cpu" in result.output
