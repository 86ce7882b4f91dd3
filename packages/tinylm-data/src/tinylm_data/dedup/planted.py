"""Planted near-duplicate sets: copies of real documents with the edits web corpora are full of.

Used by the near-dedup benchmark and tests to measure recall and false positives per kind of
edit: whitespace changes, boilerplate around a copy, and insertions, deletions or substitutions
of a share of the characters; negatives are splices (half of one document, half of another) and
unrelated pairs.
"""

from __future__ import annotations

import random

KINDS = [
    "whitespace",
    "boilerplate",
    "insert-0.5%",
    "delete-0.5%",
    "substitute-0.5%",
    "insert-1%",
    "delete-1%",
    "substitute-1%",
]
BOILERPLATE = {
    "en": (
        "Skip to main content | Home | News | Sport | Business | Contact us\nAdvertisement\n",
        "\nShare this article: Facebook Twitter Email. (c) 2019 Example Media Ltd. All rights "
        "reserved. Privacy policy | Terms of use | Cookie settings",
    ),
    "zh": (
        "首页 | 新闻 | 体育 | 财经 | 联系我们\n广告\n",
        "\n分享到：微博 微信 QQ空间。版权所有 © 2019 示例传媒有限公司。隐私政策 | 使用条款",
    ),
}


def edit_chars(text: str, kind: str, share: float, rng: random.Random, alphabet: str) -> str:
    chars = list(text)
    positions = sorted(rng.sample(range(len(chars)), max(1, round(share * len(chars)))))
    for i in reversed(positions):  # from the end, so earlier positions stay valid
        if kind == "insert":
            chars.insert(i, rng.choice(alphabet))
        elif kind == "delete":
            del chars[i]
        else:
            chars[i] = rng.choice(alphabet)
    return "".join(chars)


def respace(text: str, rng: random.Random) -> str:
    out = []
    for c in text:
        if c == "\n":
            out.append(" ")
        elif c == " " and rng.random() < 0.1:
            out.append(rng.choice(["  ", "\n", " \n "]))
        else:
            out.append(c)
    return "".join(out)


def variant(text: str, kind: str, language: str, rng: random.Random, alphabet: str) -> str:
    if kind == "whitespace":
        return respace(text, rng)
    if kind == "boilerplate":
        head, tail = BOILERPLATE[language]
        return head + text + tail
    edit, share = kind.split("-")
    return edit_chars(text, edit, float(share.rstrip("%")) / 100, rng, alphabet)


def plant(english: list[str], chinese: list[str], rng: random.Random):
    """Documents [(text, language)] and scored pairs [(i, j, language, kind)]."""
    docs: list[tuple[str, str]] = []
    pairs: list[tuple[int, int, str, str]] = []
    alphabets = {
        "en": "abcdefghijklmnopqrstuvwxyz",
        "zh": "".join(sorted({c for t in chinese for c in t if "\u4e00" <= c <= "\u9fff"})),
    }
    for language, bases in (("en", english), ("zh", chinese)):
        first = len(docs)
        docs += [(t, language) for t in bases]
        ids = list(range(first, len(docs)))
        for k, i in enumerate(ids):
            text = docs[i][0]
            for kind in (KINDS[k % len(KINDS)], KINDS[(k + len(KINDS) // 2) % len(KINDS)]):
                docs.append((variant(text, kind, language, rng, alphabets[language]), language))
                pairs.append((i, len(docs) - 1, language, kind))
            if k % 2 == 0:
                other = ids[(k + 1) % len(ids)]
                docs.append(
                    (text[: len(text) // 2] + docs[other][0][len(docs[other][0]) // 2 :], language)
                )
                pairs += [
                    (i, len(docs) - 1, language, "splice"),
                    (other, len(docs) - 1, language, "splice"),
                ]
        for _ in range(5 * len(ids)):
            i, j = rng.sample(ids, 2)
            pairs.append((min(i, j), max(i, j), language, "unrelated"))
    return docs, pairs
