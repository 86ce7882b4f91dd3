"""Traditional to simplified Chinese with OpenCC."""

from __future__ import annotations

import os
import re

import opencc

# Han ideographs and the compatibility block: text without them cannot change.
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")

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
    """Convert traditional Chinese characters to simplified (OpenCC config t2s)."""
    if not _HAN.search(text):
        return text
    return _t2s_converter().convert(text)
