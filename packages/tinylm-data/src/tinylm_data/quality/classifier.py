"""fastText quality classifiers (DCLM / FineWeb-Edu style): the text form, training, scoring."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_json
from ..textnorm import words

POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
MODEL_FILE = "model.bin"
STATS_FILE = "training.json"


def fasttext_line(text: str) -> str:
    """One line of lower-case words (jieba words for Chinese), as training and scoring see it."""
    return " ".join(words(text, "auto"))


def _fasttext():
    import fasttext
    import fasttext.FastText as ft

    ft.eprint = lambda *args, **kwargs: None  # load_model's warning about an API it dropped
    return fasttext


def model_file(path: Path) -> Path:
    """The .bin file of a classifier given as the file or as the directory `train` wrote."""
    return path / MODEL_FILE if path.is_dir() else path


def load_fasttext(path: Path):
    return _fasttext().load_model(str(model_file(path)))


def label_probability(model, text: str, label: str) -> float:
    # The binding's own predict; the Python wrapper's breaks on numpy 2 (np.array(copy=False)).
    pairs = model.f.predict(fasttext_line(text) + "\n", -1, 0.0, "replace")
    return next((float(p) for p, name in pairs if name == label), 0.0)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    epochs: int = 10
    lr: float = 0.5
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 1
    seed: int = 0
    valid_share: float = 0.1  # held out to measure the classifier


def train_classifier(
    positive: Iterable[str], negative: Iterable[str], out_dir: Path, settings: TrainSettings
) -> dict[str, Any]:
    """Train on labelled texts, save `model.bin` and `training.json` (counts, settings, confusion)."""
    examples = [(POSITIVE, t) for t in positive] + [(NEGATIVE, t) for t in negative]
    lines = [(label, fasttext_line(text)) for label, text in examples]
    lines = [(label, line) for label, line in lines if line]
    counts = {label: sum(1 for lab, _ in lines if lab == label) for label in (POSITIVE, NEGATIVE)}
    if min(counts.values()) == 0:
        raise ValueError(
            f"training needs positive and negative documents with words; got {counts[POSITIVE]} "
            f"positive and {counts[NEGATIVE]} negative"
        )
    random.Random(settings.seed).shuffle(lines)
    n_valid = int(len(lines) * settings.valid_share)
    valid, train = lines[:n_valid], lines[n_valid:]
    out_dir.mkdir(parents=True, exist_ok=True)
    train_file = out_dir / "train.txt.tmp"
    train_file.write_text("".join(f"{label} {line}\n" for label, line in train), encoding="utf-8")
    try:
        model = _fasttext().train_supervised(
            str(train_file),
            epoch=settings.epochs,
            lr=settings.lr,
            dim=settings.dim,
            wordNgrams=settings.word_ngrams,
            minCount=settings.min_count,
            seed=settings.seed,
            thread=1,  # one thread: the same data and seed give the same model
            verbose=0,
        )
    finally:
        train_file.unlink(missing_ok=True)
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        model.save_model(str(tmp))
    stats = {
        "documents": {"positive": counts[POSITIVE], "negative": counts[NEGATIVE]},
        "train": len(train),
        "valid": len(valid),
        "settings": {
            "epochs": settings.epochs,
            "lr": settings.lr,
            "dim": settings.dim,
            "word_ngrams": settings.word_ngrams,
            "min_count": settings.min_count,
            "seed": settings.seed,
            "valid_share": settings.valid_share,
        },
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "valid_confusion": confusion(
            [label == POSITIVE for label, _ in valid],
            [_line_probability(model, line) >= 0.5 for _, line in valid],
        ),
    }
    write_json(out_dir / STATS_FILE, stats)
    return stats


def _line_probability(model, line: str) -> float:
    pairs = model.f.predict(line + "\n", -1, 0.0, "replace")
    return next((float(p) for p, name in pairs if name == POSITIVE), 0.0)


def confusion(truth: list[bool], predicted: list[bool]) -> dict[str, float]:
    """Counts and rates of a binary decision (positive: high quality / kept)."""
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    tn = len(truth) - tp - fp - fn
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": (tp + tn) / len(truth) if truth else 0.0,
    }
