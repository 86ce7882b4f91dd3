"""Authored data to measure a quality filter: clean paragraphs of the embedded sample, and junk
planted from them (shuffled words, keyword spam, boilerplate menus, stuttering repeats, mixed
scripts), for the separation test and the benchmark.
"""

from __future__ import annotations

import random
import re

JUNK_KINDS = ("shuffled", "spam", "menu", "repeats", "mixed_scripts")

_SPAM_EN = "cheap best price buy now free shipping discount casino loans viagra deal click win"
_SPAM_ZH = "免费 最低价 点击 优惠 包邮 代购 秒杀 中奖 加微信 特价 促销 返现"
_MENU_EN = [
    "Home", "About Us", "Contact", "Login", "Register", "Privacy Policy", "Terms of Use",
    "Sitemap", "FAQ", "Careers", "Blog", "Shop", "Cart", "Help", "Search", "Subscribe",
]  # fmt: skip
_MENU_ZH = [
    "首页", "关于我们", "联系我们", "登录", "注册", "隐私政策", "网站地图", "帮助中心", "购物车",
    "加入收藏", "设为首页",
]  # fmt: skip
_SCRIPTS = [
    "Привет", "мир", "данные", "ΑΒΓΔ", "λόγος", "مرحبا", "بالعالم", "שלום", "こんにちは", "한국어",
    "ภาษาไทย",
]  # fmt: skip


def clean_paragraphs() -> list[tuple[str, str]]:
    """(language, paragraph) from the sample's Wikipedia-style English and news Chinese, skipping
    every document the sample planted something in."""
    from ..readers import read_documents
    from ..sample import planted, sample_dir

    marked = planted()
    skip = {
        d["id"]
        for kind in ("junk", "exact_duplicates", "near_duplicates", "short", "long")
        for d in _documents(marked.get(kind))
    }
    out: list[tuple[str, str]] = []
    root = sample_dir()
    for kind, file, language in (
        ("dolma", "dolma/wiki_en-0000.json.gz", "en"),
        ("clue", "clue/news2016zh-0001.txt", "zh"),
    ):
        for doc in read_documents(kind, root / file, source=kind, display_path=file):
            if not hasattr(doc, "text") or doc.id in skip:
                continue
            for part in re.split(r"\n+", doc.text):
                part = part.strip()
                long_enough = len(part.split()) >= 25 if language == "en" else len(part) >= 80
                if long_enough:
                    out.append((language, part))
    return out


def _documents(entry) -> list[dict]:
    """The document locators under one planted.json entry, however it nests them."""
    if isinstance(entry, dict):
        if "id" in entry:
            return [entry]
        return [d for value in entry.values() for d in _documents(value)]
    if isinstance(entry, list):
        return [d for value in entry for d in _documents(value)]
    return []


def _words(text: str, language: str) -> list[str]:
    if language == "zh":
        from ..textnorm import _jieba

        return [w for w in _jieba().lcut(text) if w.strip()]
    return text.split()


def make_junk(kind: str, text: str, language: str, rng: random.Random) -> str:
    """One junk document of `kind`, about as long as `text` and built from its words."""
    words = _words(text, language)
    sep = "" if language == "zh" else " "
    n = max(len(words), 12)
    if kind == "shuffled":
        rng.shuffle(words)
        return sep.join(words)
    if kind == "spam":
        keywords = (_SPAM_ZH if language == "zh" else _SPAM_EN).split()
        picked = rng.sample(keywords, 4)
        return " ".join(rng.choice(picked) for _ in range(n))
    if kind == "menu":
        items = _MENU_ZH if language == "zh" else _MENU_EN
        return " | ".join(rng.choice(items) for _ in range(max(n // 2, 8)))
    if kind == "repeats":
        # machine-translated-looking stutter: every word said two or three times
        return sep.join(w for word in words[:n] for w in [word] * rng.randint(2, 3))
    if kind == "mixed_scripts":
        out = []
        for word in words:
            out.append(word)
            if rng.random() < 0.5:
                out.append(rng.choice(_SCRIPTS))
        return " ".join(out)
    raise ValueError(f"unknown junk kind {kind!r}; choose one of {', '.join(JUNK_KINDS)}")


def every_kind_of_junk(clean: list[tuple[str, str]], seed: int = 0) -> list[tuple[str, str]]:
    """(kind, junk text): every kind planted from every paragraph (negatives for a classifier)."""
    n = len(JUNK_KINDS)
    return [x for r in range(n) for x in planted_junk(clean[r:] + clean[:r], seed=seed + r)]


def planted_junk(clean: list[tuple[str, str]], seed: int = 0) -> list[tuple[str, str]]:
    """(kind, junk text) for each clean paragraph, the kinds taken in turn."""
    rng = random.Random(seed)
    return [
        (
            JUNK_KINDS[i % len(JUNK_KINDS)],
            make_junk(JUNK_KINDS[i % len(JUNK_KINDS)], text, lang, rng),
        )
        for i, (lang, text) in enumerate(clean)
    ]
