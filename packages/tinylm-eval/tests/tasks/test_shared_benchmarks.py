"""Optional: a tiny model over 2-3 real subjects of each benchmark; checks shapes and accounting only."""

import csv

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinylm_eval.models.hf import HFModel
from tinylm_eval.tasks import ChoiceConfig, get_task

CASES = [
    ("mmlu", "val", ["abstract_algebra", "philosophy"]),
    ("ceval", "val", ["computer_network", "law"]),
    ("cmmlu", "test", ["agronomy", "chinese_history"]),
]


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("benchmark", "split", "subjects"), CASES)
def test_real_subjects_are_all_scored(shared_data, tiny_model_dir, benchmark, split, subjects):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    root = shared_data / benchmark
    config = ChoiceConfig(
        data_dir=root,
        split=split,
        subjects=subjects,
        shots=1,
        batch_size=16,
        max_length=512,
    )
    report, records = get_task(benchmark).evaluate(HFModel(model, tokenizer), config)
    for subject in subjects:
        name = f"{subject}.csv" if benchmark == "cmmlu" else f"{subject}_{split}.csv"
        with (root / split / name).open(newline="", encoding="utf-8") as handle:
            rows = len(list(csv.reader(handle))) - (benchmark != "mmlu")
        assert report["scores"]["subjects"][subject]["total"] == rows
    assert report["scores"]["questions"] == len(records)
    assert sum(report["shots_used_histogram"].values()) == len(records)
    assert all(r["prompt_tokens"] <= 512 and r["prediction"] in "ABCD" for r in records)
    assert "uncategorised" not in report["scores"]["categories"]
