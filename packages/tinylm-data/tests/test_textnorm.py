from __future__ import annotations

import warnings

import pytest

from tinylm_data.textnorm import count_zh_words, dedup_key, normalise, words


def test_normalise_folds_case_width_punctuation_and_space():
    assert normalise("Hello, World!") == normalise("hello world") == "helloworld"
    assert normalise("ＡＢＣ　１２３") == "abc123"
    assert normalise("你好，世界！") == normalise("你好 世界") == "你好世界"
    assert normalise("Straße") == normalise("STRASSE")


def test_normalise_keeps_what_makes_a_different_text():
    assert normalise("cat 1") != normalise("cat 2")
    assert normalise("繁體") != normalise("繁体")  # no t2s: the t2s rule is the place for that


def test_dedup_key_is_16_bytes_and_matches_trivial_copies():
    key = dedup_key("The same text.")
    assert isinstance(key, bytes) and len(key) == 16
    assert dedup_key("the  SAME text") == key
    assert dedup_key("The same text!\n") == key
    assert dedup_key("A different text.") != key
    assert dedup_key("lone \ud800 surrogate") == dedup_key("lone surrogate")


def test_words_english():
    assert words("Don't STOP, it's 2024!", "en") == ["don't", "stop", "it's", "2024"]
    assert words("", "en") == []


def test_words_chinese_are_jieba_words_without_marks():
    assert words("我们一起去公园，然后回家。", "zh") == [
        "我们",
        "一起",
        "去",
        "公园",
        "然后",
        "回家",
    ]
    assert words("我爱 Python！", "zh") == ["我", "爱", "python"]


def test_words_auto_detects():
    assert words("我们一起去公园", "auto") == words("我们一起去公园", "zh")
    assert words("Plain English", "auto") == ["plain", "english"]


@pytest.mark.parametrize("at_least", [1, 10, 50, 400])
def test_count_zh_words_is_exact_below_the_minimum_and_enough_above(at_least):
    text = "我们一起去公园散步，然后在湖边吃了午饭。中华人民共和国成立于1949年。" * 30
    full = len(words(text, "zh"))
    count = count_zh_words(text, at_least=at_least)
    if full < at_least:
        assert count == full
    else:
        assert count >= at_least
    assert count_zh_words(text, at_least=full + 1) == full


def test_count_zh_words_prefix_cut_matches_full_segmentation():
    # One long block without separators, then a separator: the prefix must grow past it.
    text = "中华人民共和国" * 500 + "，" + "我们" * 10
    assert count_zh_words(text, at_least=10**6) == len(words(text, "zh"))


def test_chinese_words_of_a_long_text_equal_one_jieba_pass():
    # words() feeds jieba in pieces cut at block boundaries: the result must not change.
    text = (
        "我们一起去公园散步，然后在湖边吃了午饭。中华人民共和国成立于1949年10月1日 Python3.11 版本！"
        * 200
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jieba 0.42's invalid escapes, when not yet compiled
        import jieba

    expected = [t.lower() for t in jieba.cut(text) if any(c.isalnum() for c in t)]
    assert words(text, "zh") == expected


def test_a_long_stretch_without_boundaries_is_cut_and_stays_fast():
    # jieba is quadratic on such stretches; the forced cuts keep this at a few pieces of 4096.
    text = "中" * 50_000
    assert count_zh_words(text, at_least=10) == 10
    assert "".join(words(text, "zh")) == text
