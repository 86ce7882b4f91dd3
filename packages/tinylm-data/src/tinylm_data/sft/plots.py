"""PNG figures of an SFT build: sample lengths per source, and where the records went."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plots import figure, save


def plot_sft(stats: dict, lengths: dict[str, list[int]], bins: np.ndarray, directory: Path) -> None:
    fig, ax = figure()
    labels = [f"<{b}" for b in bins[1:-1]] + [f">={bins[-2]}"]
    x = np.arange(len(labels))
    width = 0.8 / max(len(lengths), 1)
    for i, (name, values) in enumerate(lengths.items()):
        counts, _ = np.histogram(values, bins=bins)
        ax.bar(x + i * width, counts, width, label=name)
    ax.set_xticks(x + width * (len(lengths) - 1) / 2, labels)
    ax.set_xlabel("tokens per sample (after truncation)")
    ax.set_ylabel("samples")
    ax.set_title("Sample lengths")
    ax.legend()
    save(fig, directory / "lengths.png")

    fig, ax = figure()
    names = list(stats["sources"])
    parts = ("kept", "duplicates", "rejected")
    bottom = np.zeros(len(names))
    for part in parts:
        values = np.array([stats["sources"][n]["accounting"][part] for n in names], dtype=float)
        ax.bar(names, values, bottom=bottom, label=part)
        bottom += values
    ax.set_ylabel("records")
    ax.set_title("Records per source: kept, duplicates, rejected")
    ax.legend()
    save(fig, directory / "records.png")
