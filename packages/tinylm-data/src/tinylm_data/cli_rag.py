"""`tinylm-data rag index` / `rag search`: a BM25 index over passages, and a look at what it finds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_out import OutRoot, WorkDir

rag_app = typer.Typer(help="Retrieval: a BM25 passage index.", no_args_is_help=True)


def sample_config_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("tinylm_data") / "rag" / "sample" / "rag-sample.yaml"))


@rag_app.command("index")
def index(
    config: Annotated[Path | None, typer.Option(help="Index config YAML.")] = None,
    source: Annotated[str | None, typer.Option(help="'sample': the embedded sample.")] = None,
    out: OutRoot = "out",
    work_dir: WorkDir = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Any config field: dotted.key=value.")
    ] = [],  # noqa: B006
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read, clean, dedup, chunk, index (BM25), measure: OUT/<name>/<version>/ + stats.json."""
    from .cli import _console, _RichProgress, _setup_logging
    from .cli_sft import resolve_chat_config
    from .config import ConfigError, parse_override
    from .publish import PublishError, resolve_out
    from .rag.config import RagIndexConfig

    _setup_logging(verbose)
    logging.getLogger("bm25s").setLevel(logging.DEBUG if verbose else logging.WARNING)
    console = _console()
    try:
        overrides: dict[str, Any] = dict(parse_override(item) for item in set_)
        cfg, base = resolve_chat_config(
            RagIndexConfig, sample_config_path(), source, config, overrides
        )
        out_root, publish_to = resolve_out(out, work_dir, cfg.name)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    from tinylm_shards import ShardError

    from .rag.build import EmptyIndexError, run_rag_index
    from .rag.squad import SquadFileError

    try:
        with _RichProgress(console) as progress:
            result = run_rag_index(cfg, base, out_root, progress, publish_to=publish_to)
    except (EmptyIndexError, FileNotFoundError, SquadFileError, ShardError, PublishError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_summary(console, result)


def _print_summary(console, result) -> None:
    from rich.table import Table

    stats = result.stats
    table = Table(title=f"{stats['name']} {stats['version']}")
    columns = ("source", "read", "rejected", "dup docs", "indexed", "passages", "dup passages")
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, s in stats["sources"].items():
        figures = [
            s["documents_read"], sum(s["rejected"].values()), s["duplicate_documents"],
            s["documents_indexed"], s["passages"], s["duplicate_passages"],
        ]  # fmt: skip
        table.add_row(name, *(f"{n:,}" for n in figures))
    console.print(table)
    timing, totals = stats["timing_s"], stats["totals"]
    lines = [
        f"{totals['passages']:,} passages, {totals['tokens']:,} BM25 tokens; read+clean+chunk "
        f"{timing['read_clean_chunk']:.2f} s, index {timing['index']:.2f} s"
    ]
    quality = stats["quality"]
    if quality is not None:
        lines.append(
            f"retrieval on {quality['questions']:,} questions ({quality['file']}): "
            f"recall@1 {quality['recall@1']}, recall@5 {quality['recall@5']}, "
            f"recall@20 {quality['recall@20']}, MRR@20 {quality['mrr@20']} "
            f"(skipped: {', '.join(f'{k} {v}' for k, v in quality['skipped'].items())})"
        )
    lines.append(f"output: {result.published or result.out_dir}  (stats.json beside the manifest)")
    console.print("\n".join(lines))


@rag_app.command("search")
def search(
    question: Annotated[str, typer.Argument(help="The query.")],
    index: Annotated[Path, typer.Option(help="OUT/<name> or a version directory.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many passages.")] = 5,
) -> None:
    """The top-k passages for QUESTION, with their BM25 scores."""
    from rich.table import Table

    from tinylm_shards import ShardError
    from tinylm_shards.retrieval import RetrievalIndex

    from .cli import _console

    console = _console()
    try:
        retrieval = RetrievalIndex.open(index)
    except (ShardError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    hits = retrieval.search(question, k)
    table = Table(title=f"{question}  ({len(retrieval):,} passages)")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("passage", overflow="fold")
    table.add_column("text", overflow="fold", ratio=1)
    for hit in hits:
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.passage.id, hit.passage.text)
    from rich.console import Console

    Console().print(table)
    if not hits:
        console.print("no passage shares a token with the question")
