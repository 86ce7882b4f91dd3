"""`tinylm-data download …`: fetch corpora into a local cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

download_app = typer.Typer(no_args_is_help=True)


@download_app.command("dolma")
def dolma(
    cache_dir: Annotated[
        Path, typer.Option(help="Where the files go (<cache>/<subset>/<file>).")
    ] = Path("cache/dolma"),
    urls: Annotated[
        str,
        typer.Option(
            help="URL list: the official v1.7 list (default), a URL, or a local file (flat or grouped JSON)."
        ),
    ] = "",
    subset: Annotated[
        list[str], typer.Option(help="Subset to sample (repeatable; default: all).")
    ] = [],  # noqa: B006
    fraction: Annotated[float | None, typer.Option(help="Share of each subset's files.")] = None,
    count: Annotated[int | None, typer.Option(help="Files per subset.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the file choice.")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel downloads.")] = 8,
    retries: Annotated[int, typer.Option(help="Attempts per file.")] = 4,
    allow_file_urls: Annotated[
        bool, typer.Option(help="Also copy file:// URLs of the list (refused by default).")
    ] = False,
) -> None:
    """Download a seeded sample of Dolma v1.7 (resumable; size, gzip and sha256 verified)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .download import OFFICIAL_DOLMA_V17_URLS, download_dolma

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    ) as progress:
        files = progress.add_task("files", total=None)
        data = progress.add_task("bytes", total=None)
        try:
            report = download_dolma(
                urls or OFFICIAL_DOLMA_V17_URLS,
                cache_dir,
                subsets=subset or None,
                fraction=fraction,
                count=count,
                seed=seed,
                workers=workers,
                retries=retries,
                allow_file_urls=allow_file_urls,
                on_start=lambda n: progress.update(files, total=n),
                on_bytes=lambda n: progress.advance(data, n),
                on_file=lambda f: progress.advance(files, 1),
            )
        except (ValueError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    done = sum(f.status == "downloaded" for f in report.files)
    cached = sum(f.status == "cached" for f in report.files)
    console.print(
        f"{done} downloaded, {cached} already cached, {len(report.failed)} failed, "
        f"{len(report.unverified)} not verified → {cache_dir}"
    )
    for unchecked in report.unverified:
        console.print(f"[yellow]not verified[/yellow] {unchecked.url}: {unchecked.unverified}")
    for failure in report.failed:
        console.print(f"[red]failed[/red] {failure.url}: {failure.error}")
    if report.failed:
        raise typer.Exit(1)
