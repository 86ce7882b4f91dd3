"""The measured separation of clean sample paragraphs from planted junk.

A reference LM is trained here with plain transformers on the clean half of the paragraphs (a
tiny Qwen2-shaped model, a few hundred CPU steps); the fastText classifier is trained on the same
half against junk planted from it. Both are measured on the other half and on junk planted from
that half, each at its default rule.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from tinylm_data.quality.config import DEFAULT_RULES, ScorerConfig
from tinylm_data.quality.junk import (
    JUNK_KINDS,
    clean_paragraphs,
    every_kind_of_junk,
    planted_junk,
)
from tinylm_data.quality.rules import band, keep_mask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paragraphs():
    clean = clean_paragraphs()
    random.Random(0).shuffle(clean)
    half = len(clean) // 2
    train, test = clean[:half], clean[half:][:300]
    # junk as a minority of what is judged, as in a corpus: 100 junk (20 of each kind), 300 clean
    return train, test, planted_junk(test[:100], seed=7)


def train_reference_lm(texts: list[str], out_dir, *, steps: int = 200, seed: int = 0):
    """A 2-layer Qwen2-shaped LM on `texts` with the sample tokenizer, saved to `out_dir`."""
    torch = pytest.importorskip("torch")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tinylm_data.tokenizer import LoadedTokenizer

    tokenizer = LoadedTokenizer("builtin:sample", out_dir)
    ids = []
    for text in texts:
        ids.extend(tokenizer.backend.encode(text, add_special_tokens=False).ids)
        ids.append(tokenizer.info.eos_id)
    block = 64
    data = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=tokenizer.backend.get_vocab_size(),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        batch = data[torch.randint(len(data), (16,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        for group in optimiser.param_groups:
            group["lr"] = 5e-3 * min(1.0, (step + 1) / 20)
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(out_dir)
    tokenizer.save(out_dir)
    return out_dir, float(loss.detach())


def confusion_figures(name, clean_kept, junk_kept, kinds):
    removed = Counter(k for k, kept in zip(kinds, junk_kept, strict=True) if not kept)
    total = Counter(kinds)
    junk_removed = 1 - float(np.mean(junk_kept))
    clean_keep = float(np.mean(clean_kept))
    print(
        f"\n{name}: clean kept {int(np.sum(clean_kept))}/{len(clean_kept)} ({clean_keep:.1%}), "
        f"junk removed {int(len(junk_kept) - np.sum(junk_kept))}/{len(junk_kept)} "
        f"({junk_removed:.1%}); per kind: "
        + ", ".join(f"{k} {removed[k]}/{total[k]}" for k in JUNK_KINDS)
    )
    return clean_keep, junk_removed


def judge(scores_clean, scores_junk, rule, clean_groups, junk_groups):
    """Keep masks at `rule`, each group's band computed over its clean and junk together (as a
    build does, with one source per language here)."""
    clean_kept = np.zeros(len(scores_clean), dtype=bool)
    junk_kept = np.zeros(len(scores_junk), dtype=bool)
    for group in set(clean_groups):
        c, j = np.array(clean_groups) == group, np.array(junk_groups) == group
        everything = np.concatenate([scores_clean[c], scores_junk[j]])
        low, high = band(rule, everything[np.isfinite(everything)])
        clean_kept[c] = keep_mask(scores_clean[c], low, high)
        junk_kept[j] = keep_mask(scores_junk[j], low, high)
    return clean_kept, junk_kept


def test_perplexity_filter_separates_clean_from_junk(paragraphs, tmp_path_factory):
    from tinylm_data.quality.scorers import PerplexityScorer

    train, test, junk = paragraphs
    model_dir, loss = train_reference_lm([t for _, t in train], tmp_path_factory.mktemp("lm"))
    scorer = PerplexityScorer(
        ScorerConfig(kind="perplexity", model=str(model_dir), max_tokens=128, batch_size=16),
        model_dir,
    )
    clean = scorer.score([t for _, t in test])
    bad = scorer.score([t for _, t in junk])
    kinds = [k for k, _ in junk]
    for kind in JUNK_KINDS:
        mine = bad[[k == kind for k in kinds]]
        print(f"{kind}: median perplexity {np.median(mine):.1f}")
    print(f"clean: median perplexity {np.median(clean):.1f} (training loss {loss:.2f})")
    groups = [lang for lang, _ in test], [lang for lang, _ in test[:100]]
    clean_kept, junk_kept = judge(clean, bad, DEFAULT_RULES["perplexity"], *groups)
    clean_keep, junk_removed = confusion_figures("perplexity", clean_kept, junk_kept, kinds)
    assert junk_removed >= 0.90
    assert clean_keep >= 0.95


def test_fasttext_classifier_separates_clean_from_junk(paragraphs, tmp_path):
    pytest.importorskip("fasttext")
    from tinylm_data.quality.classifier import TrainSettings, train_classifier
    from tinylm_data.quality.scorers import ClassifierScorer

    train, test, junk = paragraphs
    negatives = every_kind_of_junk(train, seed=3)
    positives = [t for _, t in train] * len(JUNK_KINDS)  # as many as the negatives
    stats = train_classifier(positives, [t for _, t in negatives], tmp_path, TrainSettings())
    assert stats["valid_confusion"]["accuracy"] > 0.9
    scorer = ClassifierScorer(ScorerConfig(kind="classifier", model=str(tmp_path)), tmp_path)
    clean = scorer.score([t for _, t in test])
    bad = scorer.score([t for _, t in junk])
    groups = [lang for lang, _ in test], [lang for lang, _ in test[:100]]
    clean_kept, junk_kept = judge(clean, bad, DEFAULT_RULES["classifier"], *groups)
    clean_keep, junk_removed = confusion_figures(
        "classifier", clean_kept, junk_kept, [k for k, _ in junk]
    )
    assert junk_removed >= 0.90
    assert clean_keep >= 0.95
