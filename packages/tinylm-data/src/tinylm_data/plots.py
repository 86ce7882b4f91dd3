"""PNG figures of a build: the document funnel and the document-length histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .stages import REMOVING_STAGES, STAGE_INFO


def figure(figsize: tuple[float, float] = (9, 4.5)):
    """A new figure and its axes, drawn off screen: no pyplot, whose import and figure
    bookkeeping cost a build a noticeable part of a second."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})


def plot_funnel(stats: dict, path: Path) -> None:
    names = list(stats["sources"])
    steps = ["in", *REMOVING_STAGES]
    x = np.arange(len(steps))
    width = 0.8 / max(len(names), 1)
    fig, ax = figure()
    for i, name in enumerate(names):
        funnel = stats["sources"][name]["funnel"]
        ax.bar(x + i * width, [funnel[s] for s in steps], width, label=name)
    ax.set_xticks(
        x + width * (len(names) - 1) / 2, ["input", *(STAGE_INFO[s].after for s in REMOVING_STAGES)]
    )
    ax.tick_params(axis="x", labelrotation=15)
    ax.set_ylabel("documents")
    ax.set_title("Documents remaining after each stage")
    ax.legend()
    save(fig, path)


def plot_lengths(histograms: dict[str, list[int]], bins: np.ndarray, path: Path) -> None:
    fig, ax = figure()
    edges = bins[1:]  # bin k holds lengths in [bins[k], bins[k+1])
    for name, counts in histograms.items():
        counts = np.asarray(counts)
        if counts.sum() == 0:
            continue
        last = int(np.nonzero(counts)[0].max()) + 1
        ax.step(edges[:last], counts[:last], where="pre", label=f"{name} ({counts.sum()} docs)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("document length in tokens (EOS included)")
    ax.set_ylabel("documents")
    ax.set_title("Kept document lengths")
    ax.legend()
    save(fig, path)
