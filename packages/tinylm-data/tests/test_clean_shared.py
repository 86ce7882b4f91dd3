"""The rules and filters on the real corpora beside the checkout: are the rates plausible?

Prints, per corpus, the share of documents each rule changes and each filter drops, and
checks them against generous bounds: a rule that suddenly changes most documents of a clean
corpus, or eats its characters, has gone wrong.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from tinylm_data.clean import Cleaner, default_rules
from tinylm_data.filters import FilterConfig, apply_filters, detect_language

pytestmark = pytest.mark.shared

DOCS_PER_CORPUS = 600


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _dolma(folder: Path) -> list[str]:
    texts = []
    for path in sorted(folder.glob("*.json*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            texts.extend(json.loads(line)["text"] for line in lines if line.strip())
    return texts


def _corpora(root: Path) -> dict[str, tuple[str, list[str]]]:
    corpora = root / "corpora"
    found = {
        "zhwiki": ("zh", corpora / "zhwiki_sample" / "zhwiki_sampled.txt"),
        "clue": ("zh", corpora / "cluecorpussmall_sample" / "CLUECorpusSmall_sampled_uerpy.txt"),
        "en_article": ("en", corpora / "en_article_tail500.txt"),
        "dolma": ("en", corpora / "dolma_samples"),
    }
    out = {}
    for name, (language, path) in found.items():
        if path.is_dir():
            out[name] = (language, _dolma(path)[:DOCS_PER_CORPUS])
        elif path.is_file():
            out[name] = (language, _lines(path)[:DOCS_PER_CORPUS])
    if not out:
        pytest.skip("no corpora in the shared data")
    return out


# The most a rule may change (share of documents) in each corpus; unlisted rules: 0.3.
_MAX_CHANGED = {
    "zhwiki": {"brackets": 0.4},
    "clue": {"brackets": 0.4},
    "dolma": {"whitespace": 0.9, "unicode": 0.8, "url": 0.4},
    "en_article": {},
}


def test_rule_and_filter_rates_on_real_corpora(shared_data):
    for name, (language, texts) in _corpora(shared_data).items():
        cleaner = Cleaner(default_rules("auto"))
        changed: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        detected: Counter[str] = Counter()
        chars_in = chars_out = 0
        for text in texts:
            cleaned, rules = cleaner(text)
            changed.update(rules)
            chars_in += len(text)
            chars_out += len(cleaned)
            detected[detect_language(cleaned)] += 1
            dropped[apply_filters(cleaned, "auto", FilterConfig()) or "kept"] += 1
        n = len(texts)
        print(f"\n{name}: {n} docs, {chars_out / chars_in:.3f} of the chars kept")
        print("  changed by:", {rule: round(c / n, 3) for rule, c in changed.most_common()})
        print("  filters:   ", {reason: round(c / n, 3) for reason, c in dropped.most_common()})
        print("  languages: ", {lang: round(c / n, 3) for lang, c in detected.most_common()})

        limits = _MAX_CHANGED[name]
        for rule, count in changed.items():
            assert count / n <= limits.get(rule, 0.3), (name, rule, count / n)
        assert chars_out / chars_in >= 0.9, name
        assert detected[language] / n >= 0.75, (name, detected)
        assert dropped["kept"] / n >= 0.5, (name, dropped)
