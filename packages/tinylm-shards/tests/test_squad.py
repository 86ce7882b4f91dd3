"""The SQuAD-layout reader of the contract library: article slices and the gold-passage rule."""

from __future__ import annotations

import json

import pytest

from tinylm_shards.squad import (
    SquadFileError,
    article_slice,
    containment,
    holds_answer,
    is_gold_passage,
    squad_records,
)


@pytest.fixture
def squad_file(tmp_path):
    data = {
        "data": [
            {
                "title": f"t{a}",
                "paragraphs": [
                    {
                        "context": f"Article {a} says the answer is {a * 7}.",
                        "qas": [
                            {
                                "id": f"q{a}",
                                "question": f"What is {a}?",
                                "answers": [{"text": str(a * 7)}],
                            }
                        ],
                    }
                ],
            }
            for a in range(5)
        ]
    }
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_article_slices_split_the_file_without_sharing_a_context(squad_file):
    train = list(squad_records(squad_file, "0:3"))
    held = list(squad_records(squad_file, "3:"))
    assert [r.id for r in train] == ["q0", "q1", "q2"]
    assert [r.id for r in held] == ["q3", "q4"]
    assert [r.context_id for r in held] == ["mini/3-0", "mini/4-0"]  # ids of the whole file
    assert {r.context for r in train}.isdisjoint(r.context for r in held)
    assert len(list(squad_records(squad_file))) == 5


@pytest.mark.parametrize("spec", ["3", "a:b", "1:2:3", "-1:"])
def test_a_bad_article_slice_is_an_error(spec):
    with pytest.raises(SquadFileError, match="articles"):
        article_slice(spec)


def test_gold_passage_rule_folds_case_width_and_script():
    context = "臺灣的首都是臺北市，人口約兩百六十萬。"
    assert holds_answer("台湾的首都是台北市", ["臺北市"])  # traditional answer, simplified passage
    assert containment("台湾的首都是台北市", context) == 1.0
    assert is_gold_passage("台湾的首都是台北市", context, ["臺北市"])
    assert not is_gold_passage("法国的首都是巴黎。", context, ["臺北市"])
    # holds the answer but is another text: not the gold passage
    assert not is_gold_passage("台北市有很多夜市和小吃摊贩。", context, ["臺北市"])
    assert holds_answer("ＡＢＣ Corp.", ["abc corp"])
