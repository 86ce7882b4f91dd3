"""tinylm-eval: MMLU, C-Eval, CMMLU and held-out perplexity of a checkpoint, from the task registry."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from tinylm_eval.devices import DTYPES, check_device_name, check_dtype_name
from tinylm_eval.tasks import get_task, multiple_choice_tasks

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)
_debug = {"on": False}

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="exported HF model directory or LoRA adapter directory (or a hub id)"
    ),
]
BaseOpt = Annotated[
    str | None, typer.Option("--base", help="base model of an adapter (default: from its config)")
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        callback=lambda v: _checked(check_device_name, v),
        help="auto (a GPU when there is one), cpu, cuda, cuda:N or mps",
    ),
]
DtypeOpt = Annotated[
    str,
    typer.Option(
        callback=lambda v: _checked(check_dtype_name, v),
        help=f"{', '.join(DTYPES)}; auto: bfloat16 on a GPU that has it, else float32",
    ),
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


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of a failure, not one line")
    ] = False,
) -> None:
    _debug["on"] = debug


def _checked(check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _user_errors() -> tuple[type[Exception], ...]:
    """Mistakes a person can act on: exit 2 with their message, no traceback."""
    from tinylm_eval.data import DataError
    from tinylm_eval.devices import DeviceError
    from tinylm_eval.generation import PromptsError
    from tinylm_eval.model_source import ModelSourceError
    from tinylm_eval.tasks.perplexity import ModelKindError
    from tinylm_shards import ShardError

    return (
        DataError,
        DeviceError,
        ModelSourceError,
        ModelKindError,
        PromptsError,
        ShardError,
        ValueError,
    )


def _reported(command):
    """One line on stderr for a failure (exit 2 for a user mistake, 1 otherwise); the traceback
    with `tinylm-eval --debug`."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if _debug["on"]:
                raise
            message = " ".join(str(error).split())
            if isinstance(error, _user_errors()):
                errors.print(f"[red]error:[/] {message}", markup=True)
                raise typer.Exit(2) from None
            errors.print(
                f"[red]error:[/] {type(error).__name__}: {message} "
                "(tinylm-eval --debug ... shows the traceback)"
            )
            raise typer.Exit(1) from None

    return run


def _setup_logging(to: Console = console) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=to)]
    )


def _config(task, data: str | None, split: str, **options):
    """The task's config with its subjects checked: every data mistake shows before a model loads."""
    from tinylm_eval.tasks import ChoiceConfig

    config = ChoiceConfig(data_dir=task.data_dir(data), split=split, **options)
    task.subjects(config)
    return config


def _progress_bar():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def _run_with_bar(name: str, evaluate):
    """`evaluate(progress, on_total)` under a progress bar that shows the count done and an ETA."""
    with _progress_bar() as bar:
        task = bar.add_task(name, total=None)
        return evaluate(lambda n: bar.advance(task, n), lambda total: bar.update(task, total=total))


def _score(model, task, config, out: Path) -> dict | None:
    """Run one benchmark, write its reports to `out`, print a line; its scores (None without answers)."""
    from tinylm_eval.results import ceval_submission, write_reports

    name = f"{task.name} {config.split}"
    report, records = _run_with_bar(
        name, lambda progress, total: task.evaluate(model, config, progress, on_total=total)
    )
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


def _load(model: str, base: str | None, trust_remote_code: bool, device: str, dtype: str):
    from tinylm_eval.devices import resolve_device, resolve_dtype
    from tinylm_eval.models.hf import HFModel

    # why: HFModel.load checks the model source (`resolve_model`) before it reads any weights
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if device == "cpu":
        from tinylm_eval.cpu_allocator import keep_freed_memory

        keep_freed_memory()
    logging.getLogger(__name__).info("loading %s on %s in %s", model, device, dtype)
    return HFModel.load(
        model, base=base, trust_remote_code=trust_remote_code, device=device, dtype=dtype
    )


SavePromptsOpt = Annotated[
    bool,
    typer.Option(help="write each question's whole prompt text beside its prediction"),
]


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
        save_prompts: SavePromptsOpt = False,
        out: Annotated[Path | None, typer.Option(help="output directory")] = None,
        trust_remote_code: Annotated[bool, typer.Option()] = False,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "auto",
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
            save_prompts=save_prompts,
        )
        lm = _load(model, base, trust_remote_code, device, dtype)
        name = Path(model).name
        _score(lm, task, config, out or Path("eval-results") / f"{task.name}-{split}-{name}")

    command.__doc__ = f"Score a model on {task.title} (accuracy per subject and category)."
    return _reported(command)


for _task in multiple_choice_tasks().values():
    app.command(_task.name)(_command(_task))


def subjects_by_task(spec: str | None, available: dict[str, list[str]]) -> dict[str, list[str]]:
    """`all --subjects`: each comma-separated item is `bench:subject` or a subject of every benchmark
    that has it; benchmarks left without one are skipped. None: every subject of every benchmark."""
    if not spec:
        return {name: [] for name in available}  # why: an empty list is "all" in ChoiceConfig
    chosen: dict[str, list[str]] = {}
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        bench, _, subject = item.rpartition(":")
        if bench and bench not in available:
            raise ValueError(
                f"--subjects {item}: no benchmark {bench!r} (benchmarks: {', '.join(available)})"
            )
        holders = [b for b in ([bench] if bench else available) if subject in available[b]]
        if not holders:
            where = bench or " / ".join(available)
            lists = "; ".join(
                f"{b}: {', '.join(available[b])}" for b in ([bench] if bench else available)
            )
            raise ValueError(f"--subjects {item}: no such subject in {where}. Subjects are {lists}")
        for holder in holders:
            chosen.setdefault(holder, []).append(subject)
    return {name: chosen[name] for name in available if name in chosen}


@app.command("all")
@_reported
def all_benchmarks(
    model: ModelOpt,
    base: BaseOpt = None,
    data: DataOpt = None,
    subjects: Annotated[
        str | None,
        typer.Option(
            help="comma-separated subjects, each NAME (every benchmark that has it) or "
            "BENCH:NAME; benchmarks without one are skipped (default: all)"
        ),
    ] = None,
    shots: ShotsOpt = 5,
    shot_seed: ShotSeedOpt = None,
    method: MethodOpt = "letter",
    batch_size: BatchSizeOpt = 8,
    max_length: MaxLengthOpt = 2048,
    share_prefix: SharePrefixOpt = True,
    save_prompts: SavePromptsOpt = False,
    out: Annotated[
        Path | None,
        typer.Option(help="output directory (default: eval-results/<model dir name>)"),
    ] = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
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
    options = {
        "shots": shots,
        "shot_seed": shot_seed,
        "method": method,
        "batch_size": batch_size,
        "max_length": max_length,
        "share_prefix": share_prefix,
        "save_prompts": save_prompts,
    }
    every = {
        name: _config(task, roots[name], task.split, **options) for name, task in tasks.items()
    }
    available = {name: tasks[name].subjects(config) for name, config in every.items()}
    configs = {
        name: dataclasses.replace(every[name], subjects=chosen or None)
        for name, chosen in subjects_by_task(subjects, available).items()
    }
    out = out or Path("eval-results") / Path(model).name
    lm = _load(model, base, trust_remote_code, device, dtype)
    identity = lm.identity
    summary = {"model": identity, "benchmarks": {}}
    for name, config in configs.items():
        scores = _score(lm, tasks[name], config, out / f"{name}-{config.split}")
        if scores is None:
            raise typer.Exit(2)  # why: the split lacks answers; _score wrote a submission instead
        summary["benchmarks"][name] = {
            "split": config.split,
            "task_version": tasks[name].version,
            "subjects": len(scores["subjects"]),
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
@_reported
def ppl(
    model: ModelOpt,
    data: Annotated[
        Path, typer.Option("--data", help="a tinylm-data dataset dir (OUT/<name> or its version)")
    ],
    base: BaseOpt = None,
    split: Annotated[
        str | None,
        typer.Option(help="train or validation (default: validation when the dataset has it)"),
    ] = None,
    batch_size: BatchSizeOpt = 4,
    max_blocks: Annotated[
        int | None, typer.Option(help="score N blocks drawn by --block-seed (default: all)")
    ] = None,
    block_seed: Annotated[int, typer.Option(help="seeds the order blocks are drawn in")] = 0,
    max_length: Annotated[
        int | None,
        typer.Option(help="tokens per forward: longer blocks in windows (default: whole blocks)"),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(help="--max-length: tokens between windows (default: --max-length)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the result JSON here")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Perplexity over packed shards with document masking (the validation split by default)."""
    _setup_logging()
    from tinylm_eval.tasks import PerplexityConfig

    config = PerplexityConfig(
        data=data,
        batch_size=batch_size,
        max_blocks=max_blocks,
        split=split,
        block_seed=block_seed,
        max_length=max_length,
        stride=stride,
    )
    task = get_task("ppl")
    selection = task.select(config)
    lm = _load(model, base, False, device, dtype)
    result = _run_with_bar(
        f"ppl {selection.split}",
        lambda progress, total: task.evaluate(
            lm, config, progress, on_total=total, selection=selection
        ),
    )
    console.print(
        f"perplexity {result['perplexity']:.3f} over {result['tokens']} predicted tokens "
        f"({result['blocks']} {result['split']} blocks of {result['block_size']}, "
        f"{result['windows']} windows of at most {result['max_length']})"
    )
    for bucket, entry in result["by_position"].items():
        console.print(
            f"  positions {bucket:>11}: {entry['perplexity']:.3f} ({entry['tokens']} tokens)"
        )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


MaxNewTokensOpt = Annotated[int, typer.Option(help="answer tokens at most (the answer budget)")]
TemperatureOpt = Annotated[float, typer.Option(help="0: greedy; above 0: sampled")]
TopPOpt = Annotated[float, typer.Option(help="sampled: the nucleus of this probability mass")]
TopKOpt = Annotated[int, typer.Option(help="sampled: the k likeliest tokens only; 0: all")]
RepetitionPenaltyOpt = Annotated[float, typer.Option(help="above 1 penalises repeated tokens")]
SeedOpt = Annotated[int | None, typer.Option(help="sampled: the same seed, the same answer")]
StopOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--stop", help="also stop at this text (repeatable); the model's own always apply"
    ),
]


def _generation_options(**values):
    from tinylm_eval.models import GenerationOptions

    values["stop"] = tuple(values["stop"] or ())
    return GenerationOptions(**values)


@app.command()
@_reported
def chat(
    model: ModelOpt,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="answer this one message and exit")
    ] = None,
    system: Annotated[str | None, typer.Option(help="a system prompt")] = None,
    web: Annotated[bool, typer.Option("--web", help="serve a chat page (gradio)")] = False,
    host: Annotated[str, typer.Option(help="--web: the address served on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--web: the port")] = 7860,
    max_new_tokens: MaxNewTokensOpt = 512,
    temperature: TemperatureOpt = 0.7,
    top_p: TopPOpt = 0.9,
    top_k: TopKOpt = 50,
    repetition_penalty: RepetitionPenaltyOpt = 1.1,
    seed: SeedOpt = None,
    stop: StopOpt = None,
    base: BaseOpt = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Talk to a model in its chat template: in the terminal (answers streamed; /reset, /exit),
    once with --prompt, or on a page with --web.

    Answers end at the model's end-of-turn ids and stop strings (its generation config); the
    oldest turns are dropped when the conversation outgrows the context minus --max-new-tokens.
    """
    import importlib.util

    _setup_logging(errors)
    options = _generation_options(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=stop,
    )
    if web and prompt is not None:
        raise ValueError("--web and --prompt: choose one")
    if web and importlib.util.find_spec("gradio") is None:
        raise ValueError("--web needs gradio: install the web extra (tinylm-eval[web])")
    lm = _load(model, base, trust_remote_code, device, dtype)
    lm.chat_prompt([{"role": "user", "content": ""}])  # why: no template is an error now
    from tinylm_eval.chat import ChatSession

    if web:
        from tinylm_eval.chat.web import build_page, serve

        page = build_page(lm, options, system=system, title=f"TinyLM chat: {Path(model).name}")
        errors.print(f"serving the chat page on http://{host}:{port} (Ctrl+C stops)")
        serve(page, host=host, port=port)
        return
    from tinylm_eval.chat.terminal import answer, run_terminal

    session = ChatSession(lm, options, system=system)
    if prompt is not None:
        answer(session, prompt, sys.stdout)
        return
    answers = run_terminal(session)
    errors.print(f"{answers} answers")


@app.command()
@_reported
def generate(
    model: ModelOpt,
    prompts: Annotated[
        Path, typer.Option("--prompts", help="JSON lines: each {prompt} or {messages}")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="output JSON lines (default: generations/<model>-<prompts>.jsonl)"),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="continue prompt texts as they are (no chat template)")
    ] = False,
    batch_size: BatchSizeOpt = 8,
    max_new_tokens: MaxNewTokensOpt = 512,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 1.0,
    top_k: TopKOpt = 0,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: SeedOpt = None,
    stop: StopOpt = None,
    base: BaseOpt = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Answer every prompt of a JSON-lines file in batches (greedy by default) into JSON lines,
    with the run's stats beside them (<out>.stats.json)."""
    from tinylm_eval.generation import generate_file, read_prompts, stats_path

    _setup_logging()
    options = _generation_options(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=stop,
    )
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {batch_size}")
    records = read_prompts(prompts, raw=raw)
    out = out or Path("generations") / f"{Path(model).name}-{prompts.stem}.jsonl"
    lm = _load(model, base, trust_remote_code, device, dtype)
    lm.generation_batch_size = batch_size
    if not raw:
        lm.chat_prompt([{"role": "user", "content": ""}])  # why: no template is an error now

    def run(progress, total):
        total(len(records))
        return generate_file(lm, records, options, out, progress=progress)

    stats = _run_with_bar("generate", run)
    console.print(
        f"{stats['answered']} answered, {stats['rejected']} rejected (too long), "
        f"{stats['output_tokens']} tokens generated in {stats['seconds']:.1f} s → {out} "
        f"(stats: {stats_path(out)})"
    )


@app.command()
@_reported
def pref(
    model: ModelOpt,
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="a tinylm-preference-pairs dataset (OUT/<name> or its version)"
        ),
    ],
    reference: Annotated[
        str | None,
        typer.Option(help="reference model directory (DPO's); absent: reference-free rewards"),
    ] = None,
    base: BaseOpt = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="train or a held-out split (default: validation when the dataset has it)"
        ),
    ] = None,
    beta: Annotated[float, typer.Option(help="reward scale: margins are beta * log-ratios")] = 0.1,
    batch_size: BatchSizeOpt = 8,
    max_pairs: Annotated[int | None, typer.Option(help="score the first N pairs only")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result JSON here")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Preference accuracy (share of pairs whose chosen answer has the higher implicit reward)
    and mean reward margin of a model, optionally against a reference model."""
    _setup_logging()
    from tinylm_eval.preference import PreferenceConfig, preference_scores, select_pairs

    config = PreferenceConfig(
        data=data, split=split, beta=beta, batch_size=batch_size, max_pairs=max_pairs
    )
    pairs = select_pairs(config)  # why: a data mistake shows before a model loads
    lm = _load(model, base, False, device, dtype)
    ref = _load(reference, None, False, device, dtype) if reference else None
    result = _run_with_bar(
        f"pref {pairs[1]}",
        lambda progress, total: (
            total(2 * min(len(pairs[0]), max_pairs or len(pairs[0])) * (2 if ref else 1)),
            preference_scores(lm, config, reference=ref, progress=progress, pairs=pairs),
        )[1],
    )
    against = f" against {reference}" if reference else " (reference-free)"
    console.print(
        f"preference accuracy {result['accuracy']:.2%}, mean margin {result['mean_margin']:.4f}"
        f" over {result['pairs']} {result['split']} pairs{against}"
    )
    target = out or Path("eval-results") / f"pref-{result['split']}-{Path(model).name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2))
    console.print(f"→ {target}")


PasskeyLengthsOpt = Annotated[
    str, typer.Option(help="comma-separated prompt lengths in the model's tokens")
]
PasskeyDigitsOpt = Annotated[int, typer.Option(help="digits of each key (chance: 10^-k exact)")]
PasskeyLanguageOpt = Annotated[str, typer.Option(help="en or zh filler and question")]


@app.command()
@_reported
def passkey(
    model: ModelOpt,
    lengths: PasskeyLengthsOpt = "1024,2048,4096,8192",
    depths: Annotated[
        str, typer.Option(help="comma-separated key depths in [0, 1] (0: first, 1: last)")
    ] = "0,0.25,0.5,0.75,1",
    trials: Annotated[int, typer.Option(help="prompts (keys) per length and depth")] = 5,
    key_digits: PasskeyDigitsOpt = 5,
    seed: Annotated[int, typer.Option(help="seeds the keys")] = 0,
    language: PasskeyLanguageOpt = "en",
    prompt: Annotated[
        str, typer.Option(help="auto (the chat template when the model has one), chat or plain")
    ] = "auto",
    max_new_tokens: Annotated[
        int | None, typer.Option(help="answer tokens at most (default 2 * digits + 8)")
    ] = None,
    batch_size: BatchSizeOpt = 1,
    out: Annotated[
        Path | None, typer.Option(help="output directory (default eval-results/passkey-<model>)")
    ] = None,
    base: BaseOpt = None,
    trust_remote_code: Annotated[bool, typer.Option()] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Passkey retrieval: a random key hidden at each depth of filler text, the model asked for it
    (greedy); exact and digit accuracy per length and depth, results.json, predictions.jsonl and
    heatmap.png."""
    from tinylm_eval.passkey import PasskeyConfig, build_prompts, evaluate_passkey, parse_list

    _setup_logging()
    config = PasskeyConfig(
        lengths=parse_list(lengths, int, "--lengths"),
        depths=parse_list(depths, float, "--depths"),
        trials=trials,
        key_digits=key_digits,
        seed=seed,
        language=language,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
    )
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, not {batch_size}")
    lm = _load(model, base, trust_remote_code, device, dtype)
    lm.generation_batch_size = batch_size
    prompts = build_prompts(lm, config)
    out = out or Path("eval-results") / f"passkey-{Path(model).name}"
    report = _run_with_bar(
        "passkey",
        lambda progress, total: (
            total(len(prompts[1])),
            evaluate_passkey(lm, config, out, progress=progress, prompts=prompts),
        )[1],
    )
    scores = report["scores"]
    for length, entry in scores["by_length"].items():
        console.print(
            f"{length:>6} tokens: {entry['accuracy']:.0%} exact, "
            f"{entry['digit_accuracy']:.0%} digits ({entry['prompts']} prompts)"
        )
    console.print(
        f"passkey ({report['prompt_format']} prompts): {scores['accuracy']:.2%} exact "
        f"(chance {scores['chance']['accuracy']:.0e}), {scores['digit_accuracy']:.2%} digits "
        f"(chance 10%) over {len(prompts[1])} prompts → {out}"
    )


@app.command("passkey-data")
@_reported
def passkey_data(
    tokenizer: Annotated[
        str, typer.Option("--tokenizer", help="the tokenizer directory the lengths count in")
    ],
    out: Annotated[Path, typer.Option(help="JSON lines of {id, messages} (tinylm-data sft)")],
    samples: Annotated[int, typer.Option(help="conversations to write")] = 1000,
    lengths: PasskeyLengthsOpt = "256,512",
    key_digits: PasskeyDigitsOpt = 5,
    seed: Annotated[int, typer.Option(help="seeds keys and depths (use another than eval's)")] = 1,
    language: PasskeyLanguageOpt = "en",
) -> None:
    """Passkey-style training conversations from the evaluation's prompt builder (the key at a
    uniform depth, the answer the key), for `tinylm-data sft build` (kind: messages)."""
    from tinylm_eval.passkey import parse_list
    from tinylm_eval.passkey_prompts import LANGUAGES, training_conversations

    _setup_logging()
    sizes = parse_list(lengths, int, "--lengths")
    if samples < 1 or not sizes or not 1 <= key_digits <= 30 or language not in LANGUAGES:
        raise ValueError(
            "--samples >= 1, --lengths, 1 <= --key-digits <= 30 and --language "
            f"{' or '.join(LANGUAGES)} are required"
        )
    if not (Path(tokenizer) / "tokenizer_config.json").is_file():
        raise ValueError(f"--tokenizer {tokenizer}: not a directory with tokenizer_config.json")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as lines:
        for record in training_conversations(
            lambda text: tok.encode(text, add_special_tokens=False),
            lengths=sizes,
            samples=samples,
            key_digits=key_digits,
            seed=seed,
            language=language,
        ):
            lines.write(json.dumps(record, ensure_ascii=False) + "\n")
    console.print(f"{samples} passkey conversations ({lengths} tokens) → {out}")


@app.command()
@_reported
def rag(
    model: ModelOpt,
    data: Annotated[Path, typer.Option("--data", help="SQuAD-layout file of the questions")],
    index: Annotated[
        Path, typer.Option("--index", help="retrieval index (tinylm-data rag index output)")
    ],
    k: Annotated[int, typer.Option("--k", help="passages retrieved per question")] = 3,
    articles: Annotated[
        str | None,
        typer.Option(
            help="article slice START:STOP of held-out questions, e.g. 800: (default all)"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="the first N answerable questions")] = None,
    out: Annotated[
        Path | None, typer.Option(help="output directory (default: eval-results/rag-<model>)")
    ] = None,
    batch_size: BatchSizeOpt = 8,
    max_new_tokens: MaxNewTokensOpt = 64,
    base: BaseOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Exact match and F1 on held-out questions closed book, with the top-k retrieved passages and
    with the gold passage (oracle); retrieval recall; predictions.jsonl, results.json, rag.png."""
    from tinylm_eval.rag import SETTINGS, evaluate_rag, held_out_records
    from tinylm_shards.retrieval import RetrievalIndex

    _setup_logging()
    if k < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise ValueError("--k, --batch-size and --limit must be >= 1")
    records = held_out_records(data, articles=articles, limit=limit)
    retrieval_index = RetrievalIndex.open(
        index
    )  # why: both data mistakes show before a model loads
    options = _generation_options(
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        repetition_penalty=1.0,
        seed=None,
        stop=("\n",),
    )
    lm = _load(model, base, False, device, dtype)
    lm.generation_batch_size = batch_size
    lm.chat_prompt([{"role": "user", "content": ""}])  # why: no chat template is an error now
    target = out or Path("eval-results") / f"rag-{Path(model).name}"

    def run(progress, total):
        total(len(records) * len(SETTINGS))
        return evaluate_rag(lm, records, retrieval_index, options, target, k=k, progress=progress)

    results = _run_with_bar(f"rag {data.name}", run)
    for setting in SETTINGS:
        s = results["scores"][setting]
        console.print(f"{setting:12} EM {s['em']:.2%}  F1 {s['f1']:.2%}")
    gap = results["gap_retrieved_vs_closed_book"]
    console.print(
        f"retrieved - closed book: EM {gap['em']:+.2%}, F1 {gap['f1']:+.2%}; retrieval recall@{k} "
        f"{results[f'retrieval_recall@{k}']:.2%} over {results['questions']} questions → {target}"
    )
