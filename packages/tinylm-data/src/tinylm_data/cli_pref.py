"""`tinylm-data pref build`: preference-pair shards for DPO from preference datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli_out import OutRoot, WorkDir

pref_app = typer.Typer(help="Preference-pair (DPO) data.", no_args_is_help=True)


def sample_config_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("tinylm_data") / "pref" / "sample" / "pref-sample.yaml"))


@pref_app.command("build")
def build(
    config: Annotated[Path | None, typer.Option(help="Preference build config YAML.")] = None,
    source: Annotated[str | None, typer.Option(help="'sample': the embedded sample.")] = None,
    out: OutRoot = "out",
    work_dir: WorkDir = None,
    template: Annotated[str | None, typer.Option(help="tinylm or chatml.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens of prompt + answer.")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Hub name, directory or builtin:<name>.")
    ] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="Any config field: dotted.key=value.")
    ] = [],  # noqa: B006
    allow_empty: Annotated[bool, typer.Option(help="Publish even when no pair is kept.")] = False,
    workers: Annotated[
        int, typer.Option(min=0, help="Encoding worker processes (0, the default: all cores).")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Read, clean, check pairs, dedup, hold out, render, truncate: preference shards + manifest."""
    from .cli_sft import run_build_command
    from .pref.build import PrefKind
    from .pref.config import PrefConfig

    options = {"template": template, "max_length": max_length, "tokenizer": tokenizer}
    run_build_command(
        PrefKind, PrefConfig, sample_config_path(), source, config, out, options, set_,
        allow_empty=allow_empty, workers=workers, verbose=verbose, summary=_print_summary,
        work_dir=work_dir,
    )  # fmt: skip


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
        + f"\noutput: {result.published or result.out_dir}  (stats.json, rejects/, plots/, tokenizer/ beside the manifest)"
    )


def inspect_pairs(
    console, directory: Path, manifest: dict, *, index: int, verify: bool, max_chars: int
):
    """`tinylm-data inspect` of preference pairs: the manifest, the counts, one pair decoded."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .inspect_dataset import CorruptShard, DatasetError, read_pair, verify_shards

    pref, tok, counts = manifest.get("preference", {}), manifest["tokenizer"], manifest["counts"]
    held = manifest.get("splits", {}).get("validation")
    info = Table.grid(padding=(0, 2))
    rows = [
        ("dataset", f"{manifest['name']} {manifest['version']} ({manifest['format']} schema {manifest['schema_version']})"),
        ("tokenizer", f"{tok['name']} vocab {tok['vocab_size']:,} eos {tok['eos_id']}"),
        ("pairs", f"{manifest['num_pairs']:,} training, max_length {manifest['block_size']}"
         + (f", template {pref['template']}" if pref else "")),
        ("truncated", f"{counts['prompt_truncated_pairs']:,} prompts ({counts['prompt_truncated_tokens']:,} tokens), "
         f"{counts['answer_truncated_pairs']:,} answers ({counts['answer_truncated_tokens']:,} tokens)"),
        ("shards", f"{len(manifest['shards'])} ({sum(s['bytes'] for s in manifest['shards']):,} bytes)"),
        ("validation", f"{held['num_blocks']:,} pairs in {len(held['shards'])} shard(s)" if held else "none"),
    ]  # fmt: skip
    for key, value in rows:
        info.add_row(f"[bold]{key}[/bold]", value)
    console.print(info)
    if manifest.get("sources"):
        table = Table(title="records per source")
        for column in ("source", "in", "kept", "rejected", "duplicates"):
            table.add_column(column, justify="left" if column == "source" else "right")
        for name, c in manifest["sources"].items():
            table.add_row(name, *(f"{c[k]:,}" for k in ("in", "kept", "rejected", "duplicates")))
        console.print(table)
    problems = verify_shards(directory, manifest, checksum=verify)
    if problems:
        for problem in problems:
            console.print(f"[red]error:[/red] {problem}")
        console.print(f"[red]{len(problems)} problem(s): the dataset is damaged; rebuild it[/red]")
        raise typer.Exit(1)
    if verify:
        console.print(f"[green]all {len(manifest['shards'])} shards match their sha256[/green]")
    if manifest["num_pairs"] == 0:
        return
    try:
        pair = read_pair(directory, manifest, index)
    except CorruptShard as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    text = Text()
    for part, style in (("prompt", "cyan"), ("chosen", "green"), ("rejected", "red")):
        shown = pair[part]["text"]
        if max_chars and len(shown) > max_chars:
            shown = ("… " + shown[-max_chars:]) if part == "prompt" else shown[:max_chars] + " …"
        text.append(f"⟦{part}: {pair[part]['tokens']} tokens⟧\n", style=f"bold {style}")
        text.append(shown + "\n", style=style)
    console.print(
        Panel(
            text,
            title=f"pair {index}: {pair['pair_id']} (truncated: prompt "
            f"{pair['prompt_truncated']}, answers {pair['answer_truncated']} tokens)",
        )
    )
