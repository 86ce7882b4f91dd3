"""`tinylm-data quality`: train a fastText quality classifier; report on a build's scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

quality_app = typer.Typer(
    help="Quality classifiers and the scores of a build.", no_args_is_help=True
)

KIND_BY_SUFFIX = {".txt": "txt", ".parquet": "parquet", ".json": "jsonl", ".jsonl": "jsonl"}


def _console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _kind_of(path: Path, kind: str) -> str:
    if kind != "auto":
        return kind
    suffixes = [s for s in path.suffixes if s not in {".gz", ".zst"}]
    found = KIND_BY_SUFFIX.get(suffixes[-1] if suffixes else "")
    if found is None:
        raise ValueError(f"cannot tell the format of {path} from its name: pass --kind")
    return found


def _texts(patterns: list[str], kind: str, text_field: str | None, counts: dict) -> list[str]:
    from .document import Rejection
    from .readers import expand_paths, read_documents

    paths = expand_paths(patterns, Path.cwd())  # a pattern that matches nothing raises
    texts = []
    for path in paths:
        for item in read_documents(
            _kind_of(path, kind), path, source="train", text_field=text_field
        ):
            if isinstance(item, Rejection):
                counts["rejected"] += 1
            else:
                texts.append(item.text)
    counts["files"] += len(paths)
    return texts


@quality_app.command("train")
def train(
    positive: Annotated[
        list[str], typer.Option(help="Files/globs of high-quality text (repeatable).")
    ],
    negative: Annotated[
        list[str], typer.Option(help="Files/globs of low-quality text (repeatable).")
    ],
    out: Annotated[
        str, typer.Option(help="Directory for model.bin and training.json (a local path).")
    ],
    kind: Annotated[
        str, typer.Option(help="Reader of the files; auto: by extension (txt, json(l), parquet).")
    ] = "auto",
    text_field: Annotated[str | None, typer.Option(help="Text field (json, parquet).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    lr: Annotated[float, typer.Option(min=0.0)] = 0.5,
    dim: Annotated[int, typer.Option(min=2)] = 64,
    word_ngrams: Annotated[int, typer.Option(min=1)] = 2,
    seed: int = 0,
    valid_share: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.1,
) -> None:
    """Train a fastText classifier (positive: __label__hq), DCLM / FineWeb-Edu style."""
    from .config import ConfigError
    from .publish import local_out
    from .quality.classifier import TrainSettings, train_classifier

    console = _console()
    counts = {"files": 0, "rejected": 0}
    try:
        out_dir = local_out(out, "quality train")
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        pos = _texts(positive, kind, text_field, counts)
        neg = _texts(negative, kind, text_field, counts)
        with console.status(f"training on {len(pos):,} positive, {len(neg):,} negative…"):
            stats = train_classifier(
                pos,
                neg,
                out_dir,
                TrainSettings(
                    epochs=epochs,
                    lr=lr,
                    dim=dim,
                    word_ngrams=word_ngrams,
                    seed=seed,
                    valid_share=valid_share,
                ),
            )
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    c = stats["valid_confusion"]
    console.print(
        f"trained on {stats['train']:,} documents from {counts['files']} file(s) "
        f"({counts['rejected']} unreadable record(s) skipped); held out {stats['valid']:,}: "
        f"accuracy {c['accuracy']:.3f}, precision {c['precision']:.3f}, recall {c['recall']:.3f} "
        f"(tp {c['tp']}, fp {c['fp']}, fn {c['fn']}, tn {c['tn']})\n"
        f"model: {out_dir / 'model.bin'}  stats: {out_dir / 'training.json'}"
    )


@quality_app.command("report")
def report(
    dataset: Annotated[
        Path, typer.Argument(help="A built dataset: OUT/<name>/<version> or OUT/<name> (LATEST).")
    ],
    plots: Annotated[
        Path | None, typer.Option(help="Where the histograms go (default DATASET/quality/).")
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="Example texts per band.")] = 1,
) -> None:
    """Per-source score quantiles, example texts at each band, a histogram per scorer/source."""
    from rich.table import Table

    from .quality.report import ReportError, quality_report

    console = _console()
    try:
        result = quality_report(dataset, plots_dir=plots, examples=examples)
    except ReportError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    out = typer.echo
    for scorer in result["scorers"]:
        table = Table(title=f"{scorer['name']} ({scorer['kind']}, {scorer['rule_text']})")
        names = ["source", "documents", "removed", *result["quantile_names"], "band"]
        for column in names:
            table.add_column(column, justify="left" if column == "source" else "right")
        for source, row in scorer["sources"].items():
            table.add_row(
                source,
                f"{row['documents']:,}",
                f"{row['removed']:,}",
                *(f"{v:.4g}" for v in row["quantiles"].values()),
                row["band"],
            )
        from rich.console import Console

        Console(soft_wrap=True).print(table)
        for source, row in scorer["sources"].items():
            for band_name, picked in row["examples"].items():
                for example in picked:
                    text = example["text"].replace("\n", " ")[:120]
                    mark = "kept" if example["kept"] else "dropped"
                    out(f"  {source} {band_name} {example['score']:.4g} [{mark}] {text}")
    out(f"histograms: {', '.join(str(p) for p in result['plots'])}")
    out(f"report: {result['report_file']}")
