"""The scorers: one number per document from a local model, computed in fixed-size batches.

A scorer is built once per process (`load_scorer` caches it, so a Spark executor's Python worker
loads each model once however many tasks it runs) and scores a list of texts in order, in
consecutive batches of `batch_size`: the same list gives the same batches, hence the same
floats, in any engine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import ScorerConfig

logger = logging.getLogger(__name__)

_LOADED: dict[tuple, Scorer] = {}


class Scorer:
    def __init__(self, config: ScorerConfig, model: Path) -> None:
        self.config = config
        self.model_path = model

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) float64 scores; NaN for a document the model cannot score."""
        size = self.config.batch_size
        out = np.full(len(texts), math.nan, dtype=np.float64)
        for start in range(0, len(texts), size):
            chunk = [t[: self.config.max_chars] for t in texts[start : start + size]]
            out[start : start + len(chunk)] = self._score_batch(chunk)
        return out

    def _score_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def load_scorer(config: ScorerConfig, model: Path) -> Scorer:
    key = (config.model_dump_json(), str(model))
    if key not in _LOADED:
        cls = {"perplexity": PerplexityScorer, "reward": RewardScorer}.get(
            config.kind, ClassifierScorer
        )
        _LOADED[key] = cls(config, model)
    return _LOADED[key]


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("quality scorer device 'cuda' asked for, and no CUDA device is visible")
    return name


class PerplexityScorer(Scorer):
    """exp(mean negative log-likelihood per predicted token) under a causal LM."""

    def __init__(self, config: ScorerConfig, model: Path) -> None:
        super().__init__(config, model)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = _device(config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model).to(self.device).eval()

    def _score_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        ids = self.tokenizer(
            texts, add_special_tokens=False, truncation=True, max_length=self.config.max_tokens
        )["input_ids"]
        out = np.full(len(texts), math.nan)
        longest = max((len(i) for i in ids), default=0)
        if longest < 2:
            return out
        inputs = torch.zeros((len(ids), longest), dtype=torch.long)  # (B, T), right-padded
        mask = torch.zeros((len(ids), longest), dtype=torch.long)
        for row, piece in enumerate(ids):
            inputs[row, : len(piece)] = torch.tensor(piece, dtype=torch.long)
            mask[row, : len(piece)] = 1
        inputs, mask = inputs.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=inputs, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T-1, V)
            picked = logprobs.gather(-1, inputs[:, 1:, None]).squeeze(-1)  # (B, T-1)
            predicted = mask[:, 1:].float()
            counts = predicted.sum(dim=1)
            nll = -(picked * predicted).sum(dim=1) / counts.clamp(min=1)
        ppl = torch.exp(nll).double().cpu().numpy()
        valid = counts.cpu().numpy() > 0
        out[valid] = ppl[valid]
        return out


class RewardScorer(Scorer):
    """One logit of a sequence-classification (reward) model, over the text or a Q/A pair."""

    def __init__(self, config: ScorerConfig, model: Path) -> None:
        super().__init__(config, model)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = _device(config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSequenceClassification.from_pretrained(model)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = self.model.to(self.device).eval()
        labels = self.model.config.num_labels
        self.index = config.label_index if config.label_index is not None else labels - 1
        if self.index >= labels:
            raise ValueError(f"label_index {self.index} is out of range: the model has {labels}")

    def _score_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        if self.config.pair:
            questions, answers = zip(*(_question_answer(t) for t in texts), strict=True)
            encoded = self.tokenizer(
                list(questions),
                list(answers),
                truncation="longest_first",
                max_length=self.config.max_tokens,
                padding=True,
                return_tensors="pt",
            )
        else:
            encoded = self.tokenizer(
                texts,
                truncation=True,
                max_length=self.config.max_tokens,
                padding=True,
                return_tensors="pt",
            )
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        with torch.inference_mode():
            logits = self.model(**encoded).logits.float()  # (B, labels)
        return logits[:, self.index].double().cpu().numpy()


def _question_answer(text: str) -> tuple[str, str]:
    question, _, answer = text.partition("\n")
    return question, answer


class ClassifierScorer(Scorer):
    """The probability a fastText classifier gives `label` (see `fasttext_line`)."""

    def __init__(self, config: ScorerConfig, model: Path) -> None:
        super().__init__(config, model)
        from .classifier import load_fasttext

        self.model = load_fasttext(model)
        if config.label not in self.model.get_labels():
            raise ValueError(
                f"classifier {model} has no label {config.label!r}: {self.model.get_labels()}"
            )

    def _score_batch(self, texts: list[str]) -> np.ndarray:
        from .classifier import label_probability

        return np.array(
            [label_probability(self.model, t, self.config.label) for t in texts], np.float64
        )
