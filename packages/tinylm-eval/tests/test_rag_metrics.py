"""Exact match and F1 of `tinylm-eval rag`: SQuAD normalisation for English, characters for Chinese."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinylm_eval.rag import answer_tokens, exact_match, f1_score, normalize_answer


def test_squad_normalisation():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("ＡＢＣ") == "abc"  # full width folded


def test_english_exact_match_and_f1():
    assert exact_match("the Eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # 1 common token, precision 1/1, recall 1/2
    assert f1_score("Eiffel", ["Eiffel Tower"]) == pytest.approx(2 / 3)
    assert f1_score("Paris", ["Eiffel Tower"]) == 0.0
    assert f1_score("Paris", ["Eiffel Tower", "paris"]) == 1.0  # best of the answers


def test_chinese_is_scored_per_character():
    assert answer_tokens("台北市，2020年") == ["台", "北", "市", "2020", "年"]
    assert exact_match("台北市。", ["台北市"]) == 1.0
    # 2 of 3 characters: precision 2/2, recall 2/3
    assert f1_score("台北", ["台北市"]) == pytest.approx(0.8)
    assert f1_score("高雄", ["台北市"]) == 0.0


@given(st.text(max_size=30), st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_scores_are_bounded_and_exact_match_implies_full_f1(prediction, answers):
    em, f1 = exact_match(prediction, answers), f1_score(prediction, answers)
    assert 0.0 <= f1 <= 1.0 and em in (0.0, 1.0)
    if em:
        assert f1 == pytest.approx(1.0)
