"""The `tinylm-data` command line. Thin: it parses, calls the library, and reports."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_out import OutRoot, WorkDir

app = typer.Typer(
    help="TinyLM data pipeline: raw corpora to versioned Parquet shards of packed token blocks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tokenizer_app = typer.Typer(help="Train or describe tokenizers.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")

SAMPLE = "sample"


def _mount_optional_apps() -> None:
    from .cli_download import download_app

    app.add_typer(download_app, name="download", help="Fetch corpora into a local cache.")
    from .cli_sft import sft_app

    app.add_typer(sft_app, name="sft", help="Instruction-tuning (SFT) data.")
    from .cli_pref import pref_app

    app.add_typer(pref_app, name="pref", help="Preference-pair (DPO) data.")
    from .cli_rag import rag_app

    app.add_typer(rag_app, name="rag", help="Retrieval: a BM25 passage index.")
    from .cli_quality import quality_app

    app.add_typer(
        quality_app, name="quality", help="Quality scorers: train a classifier, report scores."
    )


_mount_optional_apps()


def _console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # an error message stays one line


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=_console(), show_path=False)],
    )


def _resolve_config(
    source: str | None, config: Path | None, inputs: list[str], overrides: dict[str, Any]
) -> tuple[Any, Path]:
    from .config import ConfigError, apply_overrides, load_config_file, parse_config

    if config is not None:
        data, base = load_config_file(config), config.resolve().parent
    elif source == SAMPLE:
        from .sample import sample_dir

        path = sample_dir() / "sample.yaml"
        data, base = load_config_file(path), path.parent
    elif source is not None:
        if not inputs:
            raise ConfigError(f"--source {source} needs --input PATH (or use --config FILE)")
        data = {"name": source, "sources": [{"name": source, "kind": source, "paths": inputs}]}
        base = Path.cwd()
    else:
        raise ConfigError(
            "say what to build: --source sample, --source KIND --input PATH, or --config FILE"
        )
    if inputs and (config is not None or source == SAMPLE):
        if len(data.get("sources", [])) != 1:
            raise ConfigError("--input replaces the paths of a single-source config only")
        data["sources"][0]["paths"] = [str(Path(p).resolve()) for p in inputs]
    data = apply_overrides(data, overrides)
    return parse_config(data, origin=str(config or source)), base


@app.command()
def build(
    source: Annotated[
        str | None, typer.Option(help="'sample' (embedded), or a reader kind with --input.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Build config YAML.")] = None,
    input: Annotated[
        list[str], typer.Option("--input", help="Input files/globs (repeatable).")
    ] = [],  # noqa: B006
    out: OutRoot = "out",
    work_dir: WorkDir = None,
    name: Annotated[str | None, typer.Option(help="Dataset name.")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Hub name, directory or builtin:<name>.")
    ] = None,
    block_size: Annotated[int | None, typer.Option(help="Tokens per block.")] = None,
    pack_mode: Annotated[str | None, typer.Option(help="concat or bestfit.")] = None,
    weight: Annotated[list[str], typer.Option(help="Mixture weight SOURCE=W (repeatable).")] = [],  # noqa: B006
    near_dedup: Annotated[
        bool | None, typer.Option("--near-dedup/--no-near-dedup", help="MinHash near-dedup.")
    ] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Any config field: dotted.key=value.")
    ] = [],  # noqa: B006
    workers: Annotated[
        int, typer.Option(min=0, help="Worker processes (0, the default: all cores).")
    ] = 0,
    parallel_over: Annotated[
        str,
        typer.Option(
            help="files (each worker takes whole input files), batches (workers share each "
            "file), or auto (files when there are at least twice as many files as workers)."
        ),
    ] = "auto",
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad input instead of rejecting it.")
    ] = False,
    engine: Annotated[str, typer.Option(help="local, or spark.")] = "local",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (engine spark).")
    ] = None,
    keep_work: Annotated[bool, typer.Option(help="Keep intermediate files after success.")] = False,
    allow_empty: Annotated[
        bool, typer.Option(help="Publish the dataset even when no document is kept.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build a dataset: read, clean, filter, dedup, tokenize, pack, write shards + manifest."""
    from .config import ConfigError, parse_override
    from .publish import resolve_out

    _setup_logging(verbose)
    console = _console()
    try:
        overrides: dict[str, Any] = dict(parse_override(item) for item in set_)
        for key, value in (
            ("name", name),
            ("tokenizer", tokenizer),
            ("block_size", block_size),
            ("pack_mode", pack_mode),
        ):
            if value is not None:
                overrides[key] = value
        if near_dedup is not None:
            overrides["dedup.near.enabled"] = near_dedup
        for item in weight:
            src, _, w = item.partition("=")
            overrides[f"sources.{src}.weight"] = parse_override(f"w={w}")[1]
        cfg, base = _resolve_config(source, config, input, overrides)
        out_root, publish_to = resolve_out(out, work_dir, cfg.name)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    from .build import BuildOptions, EmptyBuildError, run_build
    from .engines import PARALLEL_OVER, LocalEngine
    from .publish import PublishError
    from .spark_engine import SparkUnavailable, spark_engine
    from .stage_one import StrictModeError
    from .stage_one_worker import WorkerStartError

    if parallel_over not in PARALLEL_OVER:
        console.print(f"[red]error:[/red] --parallel-over must be {', '.join(PARALLEL_OVER)}")
        raise typer.Exit(2)
    if engine not in ("local", "spark"):
        console.print(f"[red]error:[/red] unknown engine {engine!r}: choose local or spark")
        raise typer.Exit(2)
    options = BuildOptions(
        out_root=out_root,
        workers=workers or (os.cpu_count() or 1),
        parallel_over=parallel_over,
        strict=strict,
        keep_work=keep_work,
        allow_empty=allow_empty,
        publish_to=publish_to,
    )
    try:
        if engine == "local":
            with _RichProgress(console) as progress:
                result = run_build(
                    cfg, base, options, progress, engine=LocalEngine(options.workers, parallel_over)
                )
        else:
            with spark_engine(spark_master) as spark:
                _check_spark_work_dir(spark, publish_to, work_dir)
                with _RichProgress(console) as progress:
                    result = run_build(cfg, base, options, progress, engine=spark)
    except ConfigError as exc:  # a tokenizer that cannot be found or fetched
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except (
        StrictModeError,
        EmptyBuildError,
        FileNotFoundError,
        WorkerStartError,
        SparkUnavailable,
        PublishError,
    ) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_summary(console, result)


def _check_spark_work_dir(spark, publish_to, work_dir: Path | None) -> None:
    """A URL --out on a Spark cluster needs a --work-dir its executors see (stage 1 writes
    there); the default, a local cache directory, only does for a local master."""
    from .config import ConfigError

    master = spark.spark.sparkContext.master
    if publish_to is not None and work_dir is None and not master.startswith("local"):
        raise ConfigError(
            f"--out {publish_to.url} on Spark master {master}: give --work-dir on storage "
            "the driver and every executor see at the same path (stage 1 writes there)"
        )


class _RichProgress:
    """A rich progress bar per stage."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = None

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        self._finish_current()
        return self._progress.__exit__(*exc)

    def _finish_current(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(
                self._task, total=task.completed or 1, completed=task.completed or 1
            )

    def stage(self, name: str, total: int | None) -> None:
        self._finish_current()
        self._task = self._progress.add_task(name, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)


def _print_summary(console, result) -> None:
    from rich.table import Table

    from .stages import REMOVING_STAGES, STAGE_INFO

    stats, manifest = result.stats, result.manifest
    table = Table(
        title=f"{manifest['name']} {manifest['version']}"
        + (" (already built)" if result.reused else "")
    )
    columns = ["source", "in", *(STAGE_INFO[s].column for s in REMOVING_STAGES), "kept"]
    columns += ["upsampled", "validation", "tokens"]
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right")
    sources = stats["sources"]

    def removed(s: dict) -> list[int]:
        return [sum(s.get("removed", {}).get(stage, {}).values()) for stage in REMOVING_STAGES]

    for name, s in sources.items():
        a = s["accounting"]
        held = s["validation"]["documents"]
        figures = [a["in"], *removed(s), a["kept"], s["upsampled"], held, s["tokens_packed"]]
        table.add_row(name, *(f"{n:,}" for n in figures))
    per_stage = [sum(n) for n in zip(*(removed(s) for s in sources.values()), strict=True)]
    t = stats["total"]
    upsampled = sum(s["upsampled"] for s in sources.values())
    held = stats["validation"]["documents"]
    figures = [t["in"], *per_stage, t["kept"], upsampled, held, manifest["tokens"]["real"]]
    table.add_row("total", *(f"{n:,}" for n in figures), style="bold")
    console.print(table)
    tok = manifest["tokens"]
    console.print(
        f"{manifest['num_blocks']:,} blocks of {manifest['block_size']} ({manifest['pack_mode']}), "
        f"utilisation {tok['utilisation']:.2%}, split documents {tok['split_fraction']:.2%}, "
        f"{len(manifest['shards'])} shard(s)\n"
        f"validation: {_validation_line(stats['validation'])}\n"
        + "".join(
            f"quality: {q['name']} removed {q['removed']:,} of {q['judged']:,} ({q['rule_text']})\n"
            for q in stats.get("quality", {}).get("scorers", [])
        )
        + f"output: {result.published or result.out_dir}  (stats.json, rejects/, plots/ beside "
        "the manifest)"
    )


def _validation_line(validation: dict) -> str:
    if not validation["share"]:
        return "none (validation_share 0)"
    return (
        f"{validation['documents']:,} documents held out ({validation['share']:.2%} share), "
        f"{validation['blocks']:,} blocks, {validation['tokens']:,} tokens"
    )


def _split_line(split: dict | None) -> str:
    if split is None:
        return "none"
    share = f" ({split['share']:.2%} share)" if "share" in split else ""
    return (
        f"{split['documents']:,} documents{share}, "
        f"{split['num_blocks']:,} blocks in {len(split['shards'])} shard(s)"
    )


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(help="OUT/<name> or OUT/<name>/<version>.")],
    block: Annotated[int, typer.Option(help="Block to decode (negative counts from the end).")] = 0,
    verify: Annotated[bool, typer.Option(help="Check every shard's size and sha256.")] = False,
    max_chars: Annotated[int, typer.Option(help="Characters shown per segment (0: all).")] = 400,
) -> None:
    """Show a dataset's manifest and decode one block with its document boundaries marked
    (SFT blocks: trained tokens in bold, the rest dim; preference pairs: one pair decoded)."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .inspect_dataset import (
        CorruptShard,
        DatasetError,
        decode_block,
        load_manifest,
        read_block,
        resolve_dataset_dir,
        verify_shards,
    )

    console = _console()
    try:
        directory = resolve_dataset_dir(path)
        manifest = load_manifest(directory)
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if manifest["format"] == "tinylm-preference-pairs":
        from .cli_pref import inspect_pairs

        inspect_pairs(console, directory, manifest, index=block, verify=verify, max_chars=max_chars)
        return
    info = Table.grid(padding=(0, 2))
    tok = manifest["tokenizer"]
    sft = manifest.get("sft")
    for key, value in [
        (
            "dataset",
            f"{manifest['name']} {manifest['version']} (schema {manifest['schema_version']})",
        ),
        (
            "tokenizer",
            f"{tok['name']} vocab {tok['vocab_size']:,} eos {tok['eos_id']} sha256 {tok['sha256'][:12]}…",
        ),
        (
            "blocks",
            f"{manifest['num_blocks']:,} × {manifest['block_size']} ({manifest['pack_mode']})",
        ),
        (
            "tokens",
            f"{manifest['tokens']['real']:,} real / {manifest['tokens']['slots']:,} slots "
            f"({manifest['tokens']['utilisation']:.2%}); {manifest['tokens']['documents']:,} documents, "
            f"{manifest['tokens']['split_fraction']:.2%} split",
        ),
        (
            "shards",
            f"{len(manifest['shards'])} ({sum(s['bytes'] for s in manifest['shards']):,} bytes)",
        ),
        ("validation", _split_line(manifest.get("splits", {}).get("validation"))),
        *(
            [
                (
                    "sft",
                    f"template {sft['template']}, max_length {sft['max_length']}, trainable tokens "
                    f"{sft['trainable_tokens']['train']:,} train / "
                    f"{sft['trainable_tokens']['validation']:,} validation",
                )
            ]
            if sft
            else []
        ),
    ]:
        info.add_row(f"[bold]{key}[/bold]", value)
    console.print(info)
    counts = Table(title=f"{'samples' if sft else 'documents'} per source")
    figures = [
        k
        for k in ("in", "kept", "filtered", "duplicates", "rejected")
        if all(k in c for c in manifest["counts"].values())
    ]
    for column in ("source", *figures):
        counts.add_column(column, justify="left" if column == "source" else "right")
    for name, c in manifest["counts"].items():
        counts.add_row(name, *(f"{c[k]:,}" for k in figures))
    console.print(counts)
    # Sizes always (a stat per shard); checksums of every shard with --verify, else of the one read.
    problems = verify_shards(directory, manifest, checksum=verify)
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {problem}")
        console.print(f"[red]{len(problems)} problem(s): the dataset is damaged; rebuild it[/red]")
        raise typer.Exit(1)
    if verify:
        console.print(f"[green]all {len(manifest['shards'])} shards match their sha256[/green]")
    if manifest["num_blocks"] == 0:
        return
    try:
        row = read_block(directory, manifest, block)
    except CorruptShard as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    text = Text()
    colours = ["cyan", "magenta", "green", "yellow", "blue", "red"]
    for k, seg in enumerate(decode_block(directory, row)):
        shown = (
            seg.text if not max_chars or len(seg.text) <= max_chars else seg.text[:max_chars] + " …"
        )
        text.append(
            f"⟦{k}: {seg.doc_id} tokens {seg.start}–{seg.end}⟧", style=f"bold {colours[k % 6]}"
        )
        if seg.spans:  # an SFT sample: what is trained in bold, the rest dim
            left = max_chars or None
            for part, trained in seg.spans:
                piece = part if left is None else part[: max(left, 0)]
                text.append(piece, style=f"bold {colours[k % 6]}" if trained else "dim")
                if left is not None:
                    left -= len(part)
            text.append((" …" if left is not None and left < 0 else "") + "\n")
        else:
            text.append(shown + "\n", style=colours[k % 6])
    partial = " (partial)" if row["is_partial"] else ""
    console.print(
        Panel(
            text,
            title=f"block {block}: {row['num_tokens']} real tokens, "
            f"{len(row['doc_ids'])} segment(s){partial}",
        )
    )


@tokenizer_app.command("train")
def tokenizer_train(
    out: Annotated[
        str,
        typer.Option(help="Directory to save the tokenizer in (transformers layout; local)."),
    ],
    source: Annotated[
        str | None, typer.Option(help="'sample' to train on the embedded sample.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Train on the cleaned text of a build config's sources.")
    ] = None,
    vocab_size: Annotated[
        int, typer.Option(help="Vocabulary size, special tokens included.")
    ] = 8000,
    min_frequency: Annotated[int, typer.Option(help="Minimum pair frequency to merge.")] = 2,
) -> None:
    """Train a byte-level BPE on a corpus (the sample's tokenizer is made this way)."""
    from .config import ConfigError
    from .publish import local_out
    from .tokenizer import save_trained_tokenizer, train_bpe_tokenizer
    from .training_text import cleaned_texts

    _setup_logging(False)
    console = _console()
    try:
        out_dir = local_out(out, "tokenizer train")
        cfg, base = _resolve_config(source, config, [], {})
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    counter = {"docs": 0}

    def texts():
        for text in cleaned_texts(cfg, base):
            counter["docs"] += 1
            yield text

    with console.status("training BPE…"):
        trained = train_bpe_tokenizer(texts(), vocab_size=vocab_size, min_frequency=min_frequency)
    save_trained_tokenizer(trained, out_dir)
    console.print(
        f"trained on {counter['docs']:,} documents: vocab {trained.get_vocab_size():,} → {out_dir}"
    )
