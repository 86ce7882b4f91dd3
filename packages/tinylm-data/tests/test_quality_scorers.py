"""The perplexity and reward scorers against the models computed by hand (tiny random models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinylm_data.quality.config import ScorerConfig

pytestmark = pytest.mark.slow  # imports torch and transformers

TEXTS = [
    "The river carries silt from the mountains down to the wide green delta every spring.",
    "A good loaf of bread needs flour, water, salt, yeast and a great deal of patience.",
    "春天来了，河边的柳树发出了嫩绿的新芽，孩子们在草地上放风筝。",
    "Small models learn much when the data is clean.\nYes, and varied too.",
    "Hi",
]


def _qwen2(**kw):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=8000,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        **kw,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import Qwen2ForCausalLM, Qwen2ForSequenceClassification

    from tinylm_data.tokenizer import LoadedTokenizer

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    tokenizer = LoadedTokenizer("builtin:sample", root)
    Qwen2ForCausalLM(_qwen2()).save_pretrained(root / "lm")
    Qwen2ForSequenceClassification(_qwen2(num_labels=1)).save_pretrained(root / "rm")
    for name in ("lm", "rm"):
        tokenizer.save(root / name)
    return root


def test_perplexity_is_exp_mean_token_nll_whatever_the_batch(models):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinylm_data.quality.scorers import PerplexityScorer

    config = ScorerConfig(kind="perplexity", model="lm", max_tokens=12, batch_size=3)
    scores = PerplexityScorer(config, models / "lm").score(TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(models / "lm")
    model = AutoModelForCausalLM.from_pretrained(models / "lm").eval()
    for text, score in zip(TEXTS, scores, strict=True):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:12]
        if len(ids) < 2:
            assert math.isnan(score)
            continue
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
        assert score == pytest.approx(math.exp(float(loss)), rel=1e-4)


def test_reward_scores_the_question_answer_pair(models):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tinylm_data.quality.scorers import RewardScorer

    config = ScorerConfig(kind="reward", model="rm", pair=True, batch_size=2, max_tokens=64)
    scores = RewardScorer(config, models / "rm").score(TEXTS[3:4])
    tokenizer = AutoTokenizer.from_pretrained(models / "rm")
    model = AutoModelForSequenceClassification.from_pretrained(models / "rm").eval()
    model.config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    question, answer = TEXTS[3].split("\n")
    with torch.no_grad():
        logit = model(**tokenizer(question, answer, return_tensors="pt")).logits[0, 0]
    assert scores[0] == pytest.approx(float(logit), rel=1e-4)
    whole = RewardScorer(config.model_copy(update={"pair": False}), models / "rm")
    assert np.isfinite(whole.score(TEXTS)).all()
    with pytest.raises(ValueError, match="label_index 3 is out of range"):
        RewardScorer(config.model_copy(update={"label_index": 3}), models / "rm")
