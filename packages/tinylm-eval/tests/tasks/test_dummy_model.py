"""Every task's scoring path through the deterministic dummy model: no torch, no weights."""

import subprocess
import sys

import pytest

from tinylm_eval.data import LETTERS, SAMPLE_DIR
from tinylm_eval.models import DummyModel, LanguageModel
from tinylm_eval.tasks import ChoiceConfig, PerplexityConfig, get_task, multiple_choice_tasks
from tinylm_eval.tasks.perplexity import ModelKindError

CASES = [(name, task.split) for name, task in multiple_choice_tasks().items()]


def config(benchmark, split, **options):
    return ChoiceConfig(data_dir=SAMPLE_DIR / benchmark, split=split, shots=2, **options)


@pytest.mark.parametrize("method", ["letter", "option"])
@pytest.mark.parametrize(("benchmark", "split"), CASES)
def test_every_benchmark_scores_through_the_dummy(benchmark, split, method):
    task, model = get_task(benchmark), DummyModel()
    assert isinstance(model, LanguageModel)
    report, records = task.evaluate(model, config(benchmark, split, method=method))
    again, _ = task.evaluate(model, config(benchmark, split, method=method))
    assert report["scores"] == again["scores"]  # deterministic
    assert report["benchmark"] == benchmark and report["task_version"] == task.version
    assert report["prompt_format"] == task.prompt_format.name and report["method"] == method
    assert report["model"] == model.identity
    subjects = task.layout.subjects(SAMPLE_DIR / benchmark, split)
    questions = sum(len(task.layout.read(SAMPLE_DIR / benchmark, split, s)) for s in subjects)
    assert report["scores"]["questions"] == len(records) == questions
    for record in records:
        scores = record["scores"]
        assert list(scores) == list(LETTERS) and record["prediction"] == max(scores, key=scores.get)
    # hashed scores are not all alike: predictions spread over the letters
    assert len({r["prediction"] for r in records}) > 1
    # the dummy's tokens are UTF-8 bytes, so prompt lengths are the prompt texts' byte counts
    first = task.layout.read(SAMPLE_DIR / benchmark, split, subjects[0])[0]
    assert records[0]["prompt_tokens"] > len(task.prompt_format.render_question(first).encode())


def test_max_length_drops_shots_through_the_dummy():
    task = get_task("mmlu")
    _, records = task.evaluate(DummyModel(), config("mmlu", "test", max_length=300))
    assert all(r["prompt_tokens"] <= 300 for r in records)
    assert {r["shots_used"] for r in records} == {0, 1, 2}


def test_another_benchmarks_format_is_used_by_name():
    report, _ = get_task("mmlu").evaluate(
        DummyModel(), config("mmlu", "test", prompt_format="cmmlu")
    )
    assert report["prompt_format"] == "cmmlu"
    with pytest.raises(ValueError, match="prompt format must be one of"):
        config("mmlu", "test", prompt_format="nope")


def test_ceval_test_has_no_scores_only_predictions():
    report, records = get_task("ceval").evaluate(DummyModel(), config("ceval", "test"))
    assert "scores" not in report and "submission" in report["note"]
    assert all(r["answer"] is None and r["prediction"] in LETTERS for r in records)


def test_perplexity_needs_a_torch_model(tmp_path):
    with pytest.raises(ModelKindError, match="needs a torch model"):
        get_task("ppl").evaluate(DummyModel(), PerplexityConfig(data=tmp_path))


def test_scoring_through_the_dummy_imports_no_torch():
    code = (
        "import sys\n"
        "from tinylm_eval.data import SAMPLE_DIR\n"
        "from tinylm_eval.models import DummyModel\n"
        "from tinylm_eval.tasks import ChoiceConfig, get_task\n"
        "report, _ = get_task('cmmlu').evaluate(DummyModel(), "
        "ChoiceConfig(data_dir=SAMPLE_DIR / 'cmmlu', split='test', shots=1))\n"
        "print(report['scores']['questions'], 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["36", "False"]


def test_generation_is_a_fixed_pattern_cut_at_stop_strings():
    from tinylm_eval.models import GenerationOptions

    model = DummyModel()
    text = model.generate(["Q: 1+1?"], GenerationOptions(max_new_tokens=20))[0]
    assert (
        len(text) == 20
        and text == model.generate(["Q: 1+1?"], GenerationOptions(max_new_tokens=20))[0]
    )
    assert text.startswith(" ") and text[7] == "\n" and text[8:15] == text[:7]
    assert model.generate(["Q: 1+1?"], GenerationOptions(max_new_tokens=20, stop=("\n",))) == [
        text[:7]
    ]
    sampled = GenerationOptions(max_new_tokens=20, temperature=1.0, seed=3)
    assert model.generate(["Q: 1+1?"], sampled) == model.generate(["Q: 1+1?"], sampled)
    assert model.generate(["Q: 1+1?"], sampled) != [text]
