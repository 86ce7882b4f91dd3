"""`tinylm-data sft build`: instruction-tuning shards from chat and instruction datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_out import OutRoot, WorkDir

sft_app = typer.Typer(help="Instruction-tuning (SFT) data.", no_args_is_help=True)


def sample_config_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("tinylm_data") / "sft" / "sample" / "sft-sample.yaml"))


def resolve_sft_config(source: str | None, config: Path | None, overrides: dict[str, Any]):
    from .sft.config import SftConfig

    return resolve_chat_config(SftConfig, sample_config_path(), source, config, overrides)


def resolve_chat_config(
    model, sample: Path, source: str | None, config: Path | None, overrides: dict[str, Any]
):
    """(validated config, its base directory) from --config FILE or --source sample, with overrides;
    ConfigError for a mistake."""
    from .config import ConfigError, apply_overrides, load_config_file, parse_model

    if config is not None and source is not None:
        raise ConfigError("give --config FILE or --source sample, not both")
    if config is not None:
        path = config
    elif source == "sample":
        path = sample
    elif source is not None:
        raise ConfigError(f"--source {source!r}: only 'sample' is embedded; use --config FILE")
    else:
        raise ConfigError("say what to build: --source sample or --config FILE")
    data = apply_overrides(load_config_file(path), overrides)
    return parse_model(model, data, origin=str(config or source)), path.resolve().parent


@sft_app.command("build")
def build(
    config: Annotated[Path | None, typer.Option(help="SFT build config YAML.")] = None,
    source: Annotated[str | None, typer.Option(help="'sample': the embedded sample.")] = None,
    out: OutRoot = "out",
    work_dir: WorkDir = None,
    template: Annotated[str | None, typer.Option(help="tinylm or chatml.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample.")] = None,
    pack_mode: Annotated[str | None, typer.Option(help="bestfit or none.")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Hub name, directory or builtin:<name>.")
    ] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Any config field: dotted.key=value.")
    ] = [],  # noqa: B006
    allow_empty: Annotated[bool, typer.Option(help="Publish even when no sample is kept.")] = False,
    workers: Annotated[
        int, typer.Option(min=0, help="Encoding worker processes (0, the default: all cores).")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read, clean, dedup, hold out, augment, render, mask, pack: SFT shards + manifest."""
    from .sft.build import SftKind
    from .sft.config import SftConfig

    options = {"template": template, "max_length": max_length, "pack_mode": pack_mode}
    run_build_command(
        SftKind, SftConfig, sample_config_path(), source, config, out,
        {**options, "tokenizer": tokenizer}, set_, allow_empty=allow_empty, workers=workers,
        verbose=verbose, summary=_print_summary, work_dir=work_dir,
    )  # fmt: skip


def run_build_command(
    kind, model, sample: Path, source, config, out: str, options: dict[str, Any], set_: list[str],
    *, allow_empty: bool, workers: int, verbose: bool, summary, work_dir: Path | None = None,
) -> None:  # fmt: skip
    """The one shape of `sft build` and `pref build`: config (exit 2 on a mistake), the build
    with progress (exit 1 when nothing is kept), then the kind's summary."""
    import os

    from .cli import _console, _RichProgress, _setup_logging
    from .config import ConfigError, parse_override
    from .publish import PublishError, resolve_out

    _setup_logging(verbose)
    console = _console()
    try:
        overrides: dict[str, Any] = dict(parse_override(item) for item in set_)
        overrides.update({k: v for k, v in options.items() if v is not None})
        cfg, base = resolve_chat_config(model, sample, source, config, overrides)
        out_root, publish_to = resolve_out(out, work_dir, cfg.name)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    from .sft.builder import EmptyChatBuild, run_chat_build

    try:
        with _RichProgress(console) as progress:
            result = run_chat_build(
                kind(cfg, base), base, out_root, progress, allow_empty=allow_empty,
                workers=workers or (os.cpu_count() or 1), publish_to=publish_to,
            )  # fmt: skip
    except ConfigError as exc:  # a tokenizer that cannot be found or fetched
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except (EmptyChatBuild, FileNotFoundError, PublishError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    summary(console, result)
    resumed = result.resumed
    if resumed.get("read"):
        console.print(
            f"resumed an interrupted build: {resumed['read']} input file(s) already read, "
            f"{resumed['encoded']} already encoded"
        )


def _print_summary(console, result) -> None:
    from rich.table import Table

    manifest, stats = result.manifest, result.stats
    sft = manifest["sft"]
    table = Table(
        title=f"{manifest['name']} {manifest['version']}"
        + (" (already built)" if result.reused else "")
    )
    columns = (
        "source",
        "in",
        "rejected",
        "duplicates",
        "kept",
        "held out",
        "truncated",
        "augmented",
        "trainable tokens",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, s in stats["sources"].items():
        a = s["accounting"]
        figures = [
            a["in"], a["rejected"], a["duplicates"], a["kept"], s["samples"]["validation"],
            s["truncated_samples"], s["augmentation"]["augmented"], sum(s["trainable_tokens"].values()),
        ]  # fmt: skip
        table.add_row(name, *(f"{n:,}" for n in figures))
    console.print(table)
    train, held = stats["packing"]["train"], stats["packing"]["validation"]
    added = sft["added_special_tokens"]
    console.print(
        f"template {sft['template']}, max_length {sft['max_length']}, pack {sft['pack_mode']}: "
        f"{train['blocks']:,} training rows ({train['documents']:,} samples, utilisation "
        f"{train['utilisation']:.2%}), {held['blocks']:,} validation rows ({held['documents']:,} samples)\n"
        f"trainable tokens: {sft['trainable_tokens']['train']:,} train, "
        f"{sft['trainable_tokens']['validation']:,} validation"
        + (f"\nadded special tokens to the tokenizer: {', '.join(added)}" if added else "")
        + f"\noutput: {result.published or result.out_dir}  (stats.json, rejects/, plots/, tokenizer/ beside the manifest)"
    )
