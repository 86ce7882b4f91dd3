from __future__ import annotations

import pytest

from tinylm_data.filters import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("今天天气很好，我们去公园。", "zh"),
        ("這是繁體中文。", "zh"),
        ("我在学习 Python 和 machine learning 的基础知识。", "zh"),
        ("The weather is nice today.", "en"),
        ("The word 中文 means Chinese in this long English sentence.", "en"),
        ("Le chat est sur la table.", "en"),  # Latin script: the en filters apply
        ("今日はいい天気ですね。", "other"),
        ("오늘 날씨가 좋네요.", "other"),
        ("Сегодня хорошая погода.", "other"),
        ("12345 67.89 !!! ---", "other"),
        ("", "other"),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_detect_language_looks_only_at_a_prefix():
    assert detect_language("中文内容" * 10_000 + "English " * 1_000_000) == "zh"
