import pytest

from tinylm_eval.results import aggregate, ceval_submission
from tinylm_eval.subjects import CATEGORIES


def rec(subject, prediction, answer):
    return {"subject": subject, "prediction": prediction, "answer": answer, "id": "0"}


def test_category_scores_are_macro_averages_of_their_subjects_and_overall_micro_and_macro():
    records = (
        [rec("abstract_algebra", "A", "A")] * 3
        + [rec("abstract_algebra", "B", "A")]  # 3/4, STEM
        + [rec("astronomy", "A", "B")] * 2  # 0/2, STEM
        + [rec("philosophy", "C", "C")] * 2  # 2/2, humanities
    )
    scores = aggregate("mmlu", CATEGORIES["mmlu"], records)
    assert scores["subjects"]["abstract_algebra"]["accuracy"] == 0.75
    assert scores["categories"]["STEM"] == {"accuracy": pytest.approx(0.375), "subjects": 2}
    assert scores["categories"]["humanities"]["accuracy"] == 1.0
    assert scores["micro_accuracy"] == pytest.approx(5 / 8)
    assert scores["macro_accuracy"] == pytest.approx((0.75 + 0 + 1) / 3)
    assert scores["random_baseline"] == 0.25


def test_unknown_subject_is_uncategorised_not_dropped():
    scores = aggregate("cmmlu", CATEGORIES["cmmlu"], [rec("made_up_subject", "A", "A")])
    assert scores["subjects"]["made_up_subject"]["categories"] == ["uncategorised"]
    assert scores["questions"] == 1


def test_ceval_submission_layout():
    records = [
        {"subject": "law", "id": "0", "prediction": "B"},
        {"subject": "law", "id": "1", "prediction": "D"},
    ]
    assert ceval_submission(records) == {"law": {"0": "B", "1": "D"}}


def test_a_cmmlu_china_specific_subject_counts_in_both_of_its_categories():
    records = [rec("chinese_history", "A", "A"), rec("arts", "B", "A"), rec("ethnology", "C", "C")]
    scores = aggregate("cmmlu", CATEGORIES["cmmlu"], records)
    assert scores["subjects"]["chinese_history"]["categories"] == ["Humanities", "China specific"]
    assert scores["categories"]["Humanities"] == {"accuracy": 0.5, "subjects": 2}
    assert scores["categories"]["China specific"] == {"accuracy": 1.0, "subjects": 2}
    assert scores["categories"]["Social Science"] == {"accuracy": 1.0, "subjects": 1}
    assert scores["macro_accuracy"] == pytest.approx(2 / 3)  # over subjects, each once
