"""Traditional to simplified Chinese with OpenCC."""

from __future__ import annotations

import os
import re

import opencc

# Han ideographs and the compatibility block: text without them cannot change.
_HAN_CLASS = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
_HAN = re.compile(_HAN_CLASS)
_HAN_RUN = re.compile(_HAN_CLASS + "+")

_KANA = re.compile("[\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff]+")
JAPANESE_KANA_SHARE = 0.1
"""Text whose kana reach this share of its Han characters is Japanese, and left alone: t2s
would rewrite its kanji (専門 -> 专门). A stray の in Chinese text stays far below it."""

_converter: opencc.OpenCC | None = None
_converter_pid: int | None = None


def _t2s_converter() -> opencc.OpenCC:
    # Built lazily, once per process: a converter inherited through fork is rebuilt in the
    # child, so no native state is shared between processes.
    global _converter, _converter_pid
    if _converter is None or _converter_pid != os.getpid():
        _converter = opencc.OpenCC("t2s")
        _converter_pid = os.getpid()
    return _converter


def t2s(text: str) -> str:
    """Convert traditional Chinese characters to simplified (OpenCC config t2s); not Japanese."""
    if not _HAN.search(text):
        return text
    if _KANA.search(text):
        han = sum(map(len, _HAN_RUN.findall(text)))
        if sum(map(len, _KANA.findall(text))) >= JAPANESE_KANA_SHARE * han:
            return text
    return _t2s_converter().convert(text)
