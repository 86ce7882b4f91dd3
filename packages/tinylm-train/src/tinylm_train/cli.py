"""The tinylm-train command line: thin commands over a config file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="TinyLM pretraining, SFT and DPO on packed shards.", no_args_is_help=True)

DebugOption = Annotated[bool, typer.Option("--debug", help="Show the full traceback of a failure.")]


def _fail(exc: BaseException, *, debug: bool, code: int = 1) -> None:
    """One line for a failure (the traceback with --debug), then exit non-zero."""
    if debug:
        raise exc
    typer.echo(f"error: {exc} (--debug shows the traceback)", err=True)
    raise typer.Exit(code) from None


@app.callback()
def main(
    local_rank: Annotated[
        int | None,
        typer.Option(
            "--local_rank",
            "--local-rank",
            hidden=True,
            help="Passed by the deepspeed launcher; the rank is read from LOCAL_RANK instead.",
        ),
    ] = None,
) -> None:
    """TinyLM pretraining on packed shards."""


ConfigOption = Annotated[
    str, typer.Option(help="YAML run config file, or a shipped name (debug, sample-cpu).")
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="section.key=value override (YAML value), repeatable."),
]
ResumeOption = Annotated[
    bool, typer.Option(help="Continue from the newest whole checkpoint in output_dir.")
]


def _load_or_exit(config: str, override: list[str] | None, *, recipe: str):
    """The run config, or exit 2 naming the key (before torch is imported)."""
    from tinylm_train.config import ConfigError, dpo_settings, load_config

    try:
        run_config = load_config(config, override)
        if run_config.model.init_from is not None:
            from tinylm_train.init_from import check_init_from

            check_init_from(run_config.model.init_from)
        if recipe == "sft" and run_config.model.init_from is None:
            raise ConfigError("model.init_from: SFT starts from a model directory; give one")
        if recipe == "longlora":
            from tinylm_train.recipes.longlora import longlora_config

            run_config = longlora_config(run_config)
        if recipe == "dpo":
            dpo_settings(run_config)
        if recipe == "pretrain" and run_config.lora is not None:
            raise ConfigError("lora: LoRA adapters are trained by `tinylm-train sft` and dpo only")
        if recipe in ("pretrain", "dpo") and run_config.long_context is not None:
            raise ConfigError("long_context: trained by `tinylm-train longlora` (or sft) only")
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return run_config


def _train(run_config, *, recipe: str, resume: bool, debug: bool) -> None:
    """Run a recipe with the console set up; one error line for a failure, then the summary."""
    from rich.logging import RichHandler

    from tinylm_train.distributed import declare_cpu_accelerator

    declare_cpu_accelerator()
    from transformers.utils import logging as hf_logging

    from tinylm_train.console import format_summary
    from tinylm_train.recipes.training import SUMMARY

    if recipe == "sft":
        from tinylm_train.recipes.sft import run_sft as run
    elif recipe == "longlora":
        from tinylm_train.recipes.longlora import run_longlora as run
    elif recipe == "dpo":
        from tinylm_train.recipes.dpo import run_dpo as run
    else:
        from tinylm_train.recipes.pretrain import run_pretrain as run

    logging.basicConfig(
        level=logging.INFO, handlers=[RichHandler(show_path=debug)], format="%(message)s"
    )
    hf_logging.disable_progress_bar()  # why: the "Writing model shards" bars of every save
    try:
        final = run(run_config, resume=resume)
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:  # noqa: BLE001 - one line per failure; --debug shows it whole
        _fail(exc, debug=debug)
    summary_path = Path(run_config.output_dir) / SUMMARY
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if recipe == "dpo":
            typer.echo(_dpo_summary_line(summary))
            typer.echo(f"model: {final}")
        else:
            typer.echo(format_summary(summary))
        typer.echo(f"summary: {summary_path}")
    else:
        typer.echo(f"exported {final}")


@app.command()
def pretrain(
    config: ConfigOption,
    override: OverrideOption = None,
    resume: ResumeOption = False,
    debug: DebugOption = False,
) -> None:
    """Train a model on shards per the YAML config."""
    run_config = _load_or_exit(config, override, recipe="pretrain")
    _train(run_config, recipe="pretrain", resume=resume, debug=debug)


@app.command()
def sft(
    config: Annotated[
        str, typer.Option(help="YAML run config file, or a shipped name (sft-sample-cpu).")
    ],
    override: OverrideOption = None,
    resume: ResumeOption = False,
    debug: DebugOption = False,
) -> None:
    """Fine-tune a model (model.init_from) on SFT shards: loss on the assistant tokens only."""
    run_config = _load_or_exit(config, override, recipe="sft")
    _train(run_config, recipe="sft", resume=resume, debug=debug)


@app.command()
def longlora(
    config: Annotated[
        str, typer.Option(help="YAML run config file, or a shipped name (longlora-sample-cpu).")
    ],
    override: OverrideOption = None,
    resume: ResumeOption = False,
    debug: DebugOption = False,
) -> None:
    """Extend an SFT model's context (LongLoRA): S²-Attn, LoRA + embeddings and norms, RoPE."""
    run_config = _load_or_exit(config, override, recipe="longlora")
    _train(run_config, recipe="longlora", resume=resume, debug=debug)


@app.command()
def dpo(
    config: Annotated[
        str, typer.Option(help="YAML run config file, or a shipped name (dpo-sample-cpu).")
    ],
    override: OverrideOption = None,
    resume: ResumeOption = False,
    debug: DebugOption = False,
) -> None:
    """Preference-tune an HF model (model.init_from) on preference-pair shards with DPO."""
    run_config = _load_or_exit(config, override, recipe="dpo")
    _train(run_config, recipe="dpo", resume=resume, debug=debug)


def _dpo_summary_line(summary: dict) -> str:
    line = f"DPO {summary['steps']} steps in {summary['train_seconds']:.1f} s, loss"
    line += f" {summary['final_loss']:.4f}, reward accuracy"
    line += f" {summary['final_rewards/accuracies']:.2f}"
    if summary.get("final_val_rewards/accuracies") is not None:
        line += f", held-out accuracy {summary['final_val_rewards/accuracies']:.2f}"
        line += f" (margin {summary['final_val_rewards/margins']:.3f})"
    return line


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint-N directory.")],
    data: Annotated[Path, typer.Option(help="The shard dataset (for its tokenizer).")],
    out: Annotated[Path, typer.Option(help="Target directory.")],
    merge: Annotated[
        bool, typer.Option(help="Merge a LoRA checkpoint's adapters into its base model.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Export a checkpoint in HF format with the tokenizer files (SFT: and generation config)."""
    from tinylm_train.export import ExportError, check_checkpoint_dir

    try:
        check_checkpoint_dir(checkpoint)  # why: before torch and transformers load (seconds)
    except ExportError as exc:
        _fail(exc, debug=debug, code=2)
    from tinylm_train.export import export_checkpoint

    try:
        target = export_checkpoint(checkpoint, data, out, merge=merge)
    except Exception as exc:  # noqa: BLE001 - one line per failure; --debug shows it whole
        _fail(exc, debug=debug)
    typer.echo(f"exported {target}")


@app.command()
def estimate(
    tokens: float = typer.Option(30e9),
    params: float = typer.Option(0.5e9),
    peak_tflops: float = typer.Option(71.0),
    mfu: float = typer.Option(0.45),
    gpus: int = typer.Option(6),
    days: float | None = typer.Option(None, help="Reverse: tokens reachable in this many days."),
) -> None:
    """Planning formula: 8 · tokens · params / (peak · MFU) / GPUs."""
    rate = peak_tflops * 1e12 * mfu * gpus
    if days is not None:
        typer.echo(f"{days * 86400 * rate / (8 * params):.4g} tokens in {days} days")
    else:
        typer.echo(f"{8 * tokens * params / rate / 86400:.2f} days")
