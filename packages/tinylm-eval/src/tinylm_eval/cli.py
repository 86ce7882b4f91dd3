"""tinylm-eval: MMLU, C-Eval, CMMLU and held-out perplexity of a checkpoint, from the task registry."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from tinylm_eval.tasks import get_task, multiple_choice_tasks

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()

ModelOpt = Annotated[
    Path, typer.Option("--model", help="exported HF model directory, or a LoRA adapter directory")
]
BaseOpt = Annotated[
    Path | None, typer.Option("--base", help="base model of an adapter (default: from its config)")
]
ShotsOpt = Annotated[int, typer.Option(help="k-shot exemplars from the dev split")]
ShotSeedOpt = Annotated[
    int | None, typer.Option(help="draw shots with this seed (default: first k)")
]
MethodOpt = Annotated[
    str, typer.Option(help="letter (answer-token logits) or option (log-likelihood)")
]
BatchSizeOpt = Annotated[int, typer.Option()]
MaxLengthOpt = Annotated[int, typer.Option(help="prompt token limit; shots are dropped to fit")]
SharePrefixOpt = Annotated[
    bool, typer.Option(help="letter method: run each subject's few-shot prefix once")
]
SplitOpt = Annotated[str, typer.Option(help="a split of the release: dev, val or test")]
DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="local dir in the official layout, or 'sample' for "
        "the authored sample shipped with tinylm-eval; absent: download",
    ),
]


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)]
    )


def _config(task, data: str | None, split: str, **options):
    from tinylm_eval.data import DataError
    from tinylm_eval.tasks import ChoiceConfig

    try:
        return ChoiceConfig(data_dir=task.data_dir(data), split=split, **options)
    except (DataError, ValueError) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error


def _score(model, task, config, out: Path) -> dict | None:
    """Run one benchmark, write its reports to `out`, print a line; its scores (None without answers)."""
    from rich.progress import Progress

    from tinylm_eval.data import DataError
    from tinylm_eval.results import ceval_submission, write_reports

    name = f"{task.name} {config.split}"
    with Progress(console=console) as bar:
        progress = bar.add_task(name, total=None)
        try:
            report, records = task.evaluate(model, config, lambda n: bar.advance(progress, n))
        except DataError as error:
            console.print(f"[red]{error}")
            raise typer.Exit(2) from error
    write_reports(report, records, out)
    if "scores" not in report:
        (out / "submission.json").write_text(
            json.dumps(ceval_submission(records), ensure_ascii=False, indent=1)
        )
        console.print(f"{name}: no public answers; submission written to {out / 'submission.json'}")
        return None
    scores = report["scores"]
    console.print(
        f"{name}: micro {scores['micro_accuracy']:.2%}, macro {scores['macro_accuracy']:.2%} "
        f"over {scores['questions']} questions (random 25%) → {out}"
    )
    return scores


def _load(model: Path, base: Path | None, trust_remote_code: bool, device: str):
    from tinylm_eval.models.hf import HFModel

    if device == "cpu":
        from tinylm_eval.cpu_allocator import keep_freed_memory

        keep_freed_memory()
    return HFModel.load(model, base=base, trust_remote_code=trust_remote_code, device=device)


def _command(task):
    def command(
        model: ModelOpt,
        base: BaseOpt = None,
        data: DataOpt = None,
        split: SplitOpt = task.split,
        subjects: Annotated[
            str | None, typer.Option(help="comma-separated subjects (default: all)")
        ] = None,
        shots: ShotsOpt = 5,
        shot_seed: ShotSeedOpt = None,
        prompt_format: Annotated[
            str, typer.Option("--format", help="another benchmark's prompt format (default: own)")
        ] = "",
        method: MethodOpt = "letter",
        batch_size: BatchSizeOpt = 8,
        max_length: MaxLengthOpt = 2048,
        share_prefix: SharePrefixOpt = True,
        out: Annotated[Path | None, typer.Option(help="output directory")] = None,
        trust_remote_code: Annotated[bool, typer.Option()] = False,
        device: Annotated[str, typer.Option()] = "cpu",
    ) -> None:
        _setup_logging()
        config = _config(
            task,
            data,
            split,
            subjects=subjects.split(",") if subjects else None,
            shots=shots,
            shot_seed=shot_seed,
            prompt_format=prompt_format,
            method=method,
            batch_size=batch_size,
            max_length=max_length,
            share_prefix=share_prefix,
        )
        lm = _load(model, base, trust_remote_code, device)
        _score(lm, task, config, out or Path("eval-results") / f"{task.name}-{split}-{model.name}")

    command.__doc__ = f"Score a model on {task.title} (accuracy per subject and category)."
    return command


for _task in multiple_choice_tasks().values():
    app.command(_task.name)(_command(_task))


@app.command("all")
def all_benchmarks(
    model: ModelOpt,
    base: BaseOpt = None,
    data: DataOpt = None,
    shots: ShotsOpt = 5,
    shot_seed: ShotSeedOpt = None,
    method: MethodOpt = "letter",
    batch_size: BatchSizeOpt = 8,
    max_length: MaxLengthOpt = 2048,
    share_prefix: SharePrefixOpt = True,
    out: Annotated[
        Path | None,
        typer.Option(help="output directory (default: eval-results/<model dir name>)"),
    ] = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Score a model on every multiple-choice benchmark's answered split, each in its own format; one summary.

    `--data sample` scores the authored sample of each; a directory holds one directory per benchmark
    (mmlu/, ceval/, cmmlu/) in its official layout; without --data each release is downloaded.
    """
    _setup_logging()
    tasks = multiple_choice_tasks()
    roots = {name: data for name in tasks}
    if data not in (None, "sample"):
        roots = {name: str(Path(data) / name) for name in tasks}
    configs = {
        name: _config(
            task,
            roots[name],
            task.split,
            shots=shots,
            shot_seed=shot_seed,
            method=method,
            batch_size=batch_size,
            max_length=max_length,
            share_prefix=share_prefix,
        )
        for name, task in tasks.items()
    }
    out = out or Path("eval-results") / model.name
    lm = _load(model, base, trust_remote_code, device)
    identity = lm.identity
    summary = {"model": identity, "benchmarks": {}}
    for name, config in configs.items():
        scores = _score(lm, tasks[name], config, out / f"{name}-{config.split}")
        if scores is None:
            raise typer.Exit(2)  # why: the split lacks answers; _score wrote a submission instead
        summary["benchmarks"][name] = {
            "split": config.split,
            "task_version": tasks[name].version,
            "questions": scores["questions"],
            "micro_accuracy": scores["micro_accuracy"],
            "macro_accuracy": scores["macro_accuracy"],
            "categories": {c: v["accuracy"] for c, v in scores["categories"].items()},
        }
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    lines = [
        f"# {identity['model']}",
        "",
        "| benchmark | split | questions | micro | macro | random |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {b} | {v['split']} | {v['questions']} | {v['micro_accuracy']:.2%} "
        f"| {v['macro_accuracy']:.2%} | 25.00% |"
        for b, v in summary["benchmarks"].items()
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    console.print(f"summary → {out / 'summary.md'}")


@app.command()
def ppl(
    model: ModelOpt,
    data: Annotated[
        Path, typer.Option("--data", help="a tinylm-data dataset dir (OUT/<name> or its version)")
    ],
    base: BaseOpt = None,
    batch_size: BatchSizeOpt = 4,
    max_blocks: Annotated[int | None, typer.Option(help="score only the first N blocks")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result JSON here")] = None,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Perplexity over packed shards with document masking."""
    _setup_logging()
    from tinylm_eval.tasks import PerplexityConfig

    try:
        config = PerplexityConfig(data=data, batch_size=batch_size, max_blocks=max_blocks)
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    lm = _load(model, base, False, device)
    from tinylm_eval.perplexity import ShardError

    try:
        result = get_task("ppl").evaluate(lm, config)
    except ShardError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from error
    console.print(f"perplexity {result['perplexity']:.3f} over {result['tokens']} predicted tokens")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
