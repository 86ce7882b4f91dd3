"""`tinylm-data pref build`: preference-pair shards for DPO from preference datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

pref_app = typer.Typer(help="Preference-pair (DPO) data.", no_args_is_help=True)


def sample_config_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("tinylm_data") / "pref" / "sample" / "pref-sample.yaml"))


@pref_app.command("build")
def build(
    config: Annotated[Path | None, typer.Option(help="Preference build config YAML.")] = None,
    source: Annotated[str | None, typer.Option(help="'sample': the embedded sample.")] = None,
    out: Annotated[Path, typer.Option(help="Output root: writes OUT/<name>/<version>/.")] = Path(
        "out"
    ),
    template: Annotated[str | None, typer.Option(help="tinylm or chatml.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens of prompt + answer.")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Hub name, directory or builtin:<name>.")
    ] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Any config field: dotted.key=value.")
    ] = [],  # noqa: B006
    allow_empty: Annotated[bool, typer.Option(help="Publish even when no pair is kept.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read, clean, check pairs, dedup, hold out, render, truncate: preference shards + manifest."""
    from .cli import _console, _RichProgress, _setup_logging
    from .cli_sft import resolve_chat_config
    from .config import ConfigError, parse_override
    from .pref.config import PrefConfig

    _setup_logging(verbose)
    console = _console()
    try:
        overrides: dict[str, Any] = dict(parse_override(item) for item in set_)
        for key, value in (
            ("template", template),
            ("max_length", max_length),
            ("tokenizer", tokenizer),
        ):
            if value is not None:
                overrides[key] = value
        cfg, base = resolve_chat_config(PrefConfig, sample_config_path(), source, config, overrides)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    from .pref.build import EmptyPrefBuild, run_pref_build

    try:
        with _RichProgress(console) as progress:
            result = run_pref_build(cfg, base, out, progress, allow_empty=allow_empty)
    except ConfigError as exc:  # a tokenizer that cannot be found or fetched
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except (EmptyPrefBuild, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_summary(console, result)


def _print_summary(console, result) -> None:
    from rich.table import Table

    manifest, stats = result.manifest, result.stats
    pref = manifest["preference"]
    table = Table(
        title=f"{manifest['name']} {manifest['version']}"
        + (" (already built)" if result.reused else "")
    )
    columns = ("source", "in", "rejected", "duplicates", "kept", "held out", "prompt truncated")
    for column in columns:
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, s in stats["sources"].items():
        a = s["accounting"]
        figures = [
            a["in"], a["rejected"], a["duplicates"], a["kept"], s["pairs"]["validation"],
            s["prompt_truncated_pairs"],
        ]  # fmt: skip
        table.add_row(name, *(f"{n:,}" for n in figures))
    console.print(table)
    removed = {}
    for s in stats["sources"].values():
        for reasons in s["removed"].values():
            for reason, n in reasons.items():
                removed[reason] = removed.get(reason, 0) + n
    train, held = stats["splits"]["train"], stats["splits"]["validation"]
    console.print(
        f"template {pref['template']}, max_length {pref['max_length']}: "
        f"{train['pairs']:,} training pairs ({train['tokens']:,} tokens), "
        f"{held['pairs']:,} validation pairs\n"
        f"truncated: {train['prompt_truncated_pairs'] + held['prompt_truncated_pairs']:,} prompts, "
        f"{train['answer_truncated_pairs'] + held['answer_truncated_pairs']:,} answers"
        + (
            "\nremoved: " + ", ".join(f"{r} {n:,}" for r, n in sorted(removed.items()))
            if removed
            else ""
        )
        + f"\noutput: {result.out_dir}  (stats.json, rejects/, plots/, tokenizer/ beside the manifest)"
    )
