"""The quality report of a built dataset: score quantiles and example texts per source and band,
and a histogram per scorer and source (with the kept band marked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json
from .judge import QUANTILES

QUANTILE_NAMES = [f"p{round(q * 100)}" for q in QUANTILES]
# Where examples are taken: the lowest score, the quartiles, the median, the highest.
BANDS = {"lowest": 0.0, "p25": 0.25, "median": 0.5, "p75": 0.75, "highest": 1.0}


class ReportError(ValueError):
    """The directory is not a dataset built with quality scorers."""


def resolve_dataset(path: Path) -> Path:
    if (path / "manifest.json").is_file():
        return path
    latest = path / "LATEST"
    if latest.is_file():
        return path / latest.read_text().strip()
    raise ReportError(f"{path} is not a dataset (no manifest.json, no LATEST)")


def quality_report(dataset: Path, *, plots_dir: Path | None, examples: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    root = resolve_dataset(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    quality = manifest.get("quality")
    if not quality:
        raise ReportError(f"{root} was built without quality scorers (no 'quality' in manifest)")
    table = pq.read_table(root / quality["table"])
    plots_dir = plots_dir or root / "quality"
    sources = table.column("source").to_numpy(zero_copy_only=False)
    kept = table.column("kept").to_numpy(zero_copy_only=False)
    texts = table.column("text")
    doc_ids = table.column("doc_id")
    result: dict[str, Any] = {"dataset": str(root), "quantile_names": QUANTILE_NAMES, "scorers": []}
    plots: list[str] = []
    for scorer in quality["scorers"]:
        name = scorer["name"]
        column = table.column(name)
        scores = column.to_numpy(zero_copy_only=False).astype(np.float64)
        present = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        entry: dict[str, Any] = {
            "name": name,
            "kind": scorer["kind"],
            "rule_text": scorer["rule_text"],
            "sources": {},
        }
        for source in sorted(set(sources[present].tolist())):
            mine = np.nonzero(present & (sources == source) & np.isfinite(scores))[0]
            if len(mine) == 0:
                continue
            values = scores[mine]
            order = mine[np.argsort(values, kind="stable")]
            picked = {}
            for band_name, q in BANDS.items():
                at = int(round(q * (len(order) - 1)))
                rows = order[max(0, at - examples // 2) : max(0, at - examples // 2) + examples]
                picked[band_name] = [
                    {
                        "doc_id": doc_ids[int(r)].as_py(),
                        "score": float(scores[r]),
                        "kept": bool(kept[r]),
                        "text": texts[int(r)].as_py(),
                    }
                    for r in rows
                ]
            entry["sources"][source] = {
                "documents": int(len(mine)),
                "removed": int((~kept[mine]).sum()),
                "quantiles": dict(
                    zip(QUANTILE_NAMES, np.quantile(values, QUANTILES).tolist(), strict=True)
                ),
                "band": _band_text(scorer, source),
                "examples": picked,
            }
            path = plots_dir / f"{name}-{source}.png"
            _histogram(values, kept[mine], scorer, source, path)
            plots.append(str(path))
        result["scorers"].append(entry)
    result["plots"] = plots
    result["report_file"] = str(plots_dir / "report.json")
    write_json(plots_dir / "report.json", result)
    return result


def _band_text(scorer: dict, source: str) -> str:
    bands = scorer["bands"]
    band = bands.get(source) or bands.get("all")
    if band is None:  # per language: several bands cover one source
        return "; ".join(f"{g} [{_fmt(lo)}, {_fmt(hi)}]" for g, (lo, hi) in bands.items())
    return f"[{_fmt(band[0])}, {_fmt(band[1])}]"


def _fmt(value: float | None) -> str:
    return "open" if value is None else f"{value:.4g}"


def _histogram(values: np.ndarray, kept: np.ndarray, scorer: dict, source: str, path: Path) -> None:
    from ..plots import figure, save

    log = scorer["kind"] == "perplexity" and values.min() > 0
    data = np.log10(values) if log else values
    bins = np.histogram_bin_edges(data, bins=min(50, max(5, len(data) // 5)))
    fig, ax = figure((7, 3.5))
    ax.hist(
        [data[kept], data[~kept]],
        bins=bins,
        stacked=True,
        label=["kept", "dropped"],
        color=["tab:blue", "tab:red"],
    )
    ax.set_xlabel(f"{'log10 ' if log else ''}{scorer['name']}")
    ax.set_ylabel("documents")
    ax.set_title(
        f"{scorer['name']} on {source}: {len(values):,} documents, {int((~kept).sum()):,} dropped"
    )
    ax.legend()
    save(fig, path)
