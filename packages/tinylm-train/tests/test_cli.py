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
