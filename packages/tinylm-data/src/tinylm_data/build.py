"""A whole build: plan tasks, run stage 1 (resumable), assemble, and publish atomically.

Output: OUT/<name>/<version>/ appears in one rename once complete, then OUT/<name>/LATEST points
at it. Intermediate work lives in OUT/<name>/.work-<version>/ and survives a killed run, so a
rerun with the same inputs and configuration (hence the same version) continues where it stopped.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinylm_shards import write_manifest

from . import __version__
from .assemble import LENGTH_BINS, Assembler
from .atomic import remove_temporaries, write_json, write_text
from .config import BuildConfig
from .fingerprint import code_fingerprint, file_fingerprint, version_id
from .tasks import Task, TaskRunner, load_finished
from .tokenizer import LoadedTokenizer
from .work import WorkerSetup

logger = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    out_root: Path
    workers: int = max(os.cpu_count() or 1, 1)
    batch_size: int = 256
    strict: bool = False
    keep_work: bool = False
    # "files": each worker takes whole input files; "batches": the workers share each file's
    # batches; "auto": files when there are at least twice as many files as workers.
    parallel_over: str = "auto"


class Progress:
    """Hooks a front end implements; the defaults do nothing."""

    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...


# (tasks, setup, work_dir, config, options, reader_factory) -> task summaries
Stage1 = Callable[..., Iterable[dict[str, Any]]]


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False


def plan_tasks(config: BuildConfig, base: Path) -> list[Task]:
    from .readers import expand_paths

    tasks: list[Task] = []
    for source_index, source in enumerate(config.sources):
        for path in expand_paths(source.paths, base):
            try:
                display = path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                display = path.name
            readable = path.is_file() and os.access(path, os.R_OK)
            tasks.append(
                Task(
                    index=len(tasks),
                    source_index=source_index,
                    source=source.name,
                    kind=source.kind,
                    path=path,
                    display_path=display,
                    fingerprint=file_fingerprint(path) if readable else "unreadable",
                    size=path.stat().st_size if readable else 0,
                )
            )
    return tasks


def _read_task(config: BuildConfig) -> Callable[[Task], Any]:
    from .readers import read_documents

    def read(task: Task):
        source = config.sources[task.source_index]
        return read_documents(
            source.kind,
            task.path,
            source=source.name,
            text_field=source.text_field,
            id_field=source.id_field,
            display_path=task.display_path,
            max_line_bytes=config.max_line_bytes,
        )

    return read


def make_task_runner(
    config, setup, work_dir, options, reader_factory, *, workers: int
) -> TaskRunner:
    return TaskRunner(
        config,
        setup,
        work_dir,
        workers=workers,
        batch_size=options.batch_size,
        strict=options.strict,
        reader=reader_factory(config),
    )


def _local_stage1(progress: Progress) -> Stage1:
    """Whole files in parallel when there are enough of them, else batches of one file at a time.

    File-parallel workers read, process and write their files themselves, so the main process
    only waits; with fewer files than twice the workers, one large file would leave the other
    workers idle, so its batches are spread over the pool instead.
    """

    def run(tasks, setup, work_dir, config, options, reader_factory):
        workers = max(1, min(options.workers, os.cpu_count() or 1))
        if options.parallel_over not in ("auto", "files", "batches"):
            raise ValueError(
                f"parallel_over must be auto, files or batches: {options.parallel_over!r}"
            )
        by_files = options.parallel_over == "files" or (
            options.parallel_over == "auto" and len(tasks) >= 2 * workers
        )
        if workers > 1 and by_files:
            yield from _file_parallel(tasks, workers, progress, (
                config, setup, work_dir, options, reader_factory
            ))  # fmt: skip
            return
        with make_task_runner(
            config, setup, work_dir, options, reader_factory, workers=workers
        ) as runner:
            for task in tasks:
                yield runner.run(task)
                progress.advance(task.size)

    return run


_FILE_RUNNER: TaskRunner | None = None


def _init_file_worker(config, setup, work_dir, options, reader_factory) -> None:
    global _FILE_RUNNER
    _FILE_RUNNER = make_task_runner(config, setup, work_dir, options, reader_factory, workers=1)
    _FILE_RUNNER.__enter__()


def _run_file_task(task: Task) -> dict[str, Any]:
    assert _FILE_RUNNER is not None
    return _FILE_RUNNER.run(task)


def _file_parallel(tasks, workers: int, progress: Progress, runner_args: tuple):
    """One task per worker at a time, largest first (so a big file does not start last)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = sorted(tasks, key=lambda t: (-t.size, t.index))
    with ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("fork"),
        initializer=_init_file_worker,
        initargs=runner_args,
    ) as pool:
        pending = {pool.submit(_run_file_task, task): task for task in queue[:workers]}
        queue = queue[workers:]
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    summary = future.result()
                    if queue:
                        following = queue.pop(0)
                        pending[pool.submit(_run_file_task, following)] = following
                    progress.advance(task.size)
                    yield summary
        except BrokenProcessPool:
            raise RuntimeError(
                "a build worker process died (killed, or out of memory); finished files are "
                "kept: rerun the same command to resume"
            ) from None
        finally:
            for future in pending:
                future.cancel()


def run_build(
    config: BuildConfig,
    base: Path,
    options: BuildOptions,
    progress: Progress | None = None,
    *,
    stage1: Stage1 | None = None,
    assembler_factory: Callable[..., Assembler] | None = None,
) -> BuildResult:
    """Build `config` (paths relative to `base`) under `options.out_root`.

    `stage1` and `assembler_factory` let another engine (Spark) run the same steps its own way.
    """
    progress = progress or Progress()
    progress.stage("load tokenizer, hash inputs", None)
    tasks = plan_tasks(config, base)
    tokenizer = LoadedTokenizer(config.tokenizer, base)
    config_data = config.model_dump(mode="json")
    version = version_id(
        inputs=[
            {"source": t.source, "file": t.display_path, "content": t.fingerprint} for t in tasks
        ],
        config=config_data,
        code_version=code_fingerprint(),
        tokenizer_sha256=tokenizer.info.sha256,
    )
    dataset_dir = options.out_root / config.name
    out_dir = dataset_dir / version
    if (out_dir / "manifest.json").is_file():
        import json

        logger.info("%s is already built; nothing to do", out_dir)
        write_text(dataset_dir / "LATEST", version + "\n")
        return BuildResult(
            out_dir,
            json.loads((out_dir / "manifest.json").read_text()),
            json.loads((out_dir / "stats.json").read_text()),
            reused=True,
        )
    work_dir = dataset_dir / f".work-{version}"
    stale = remove_temporaries(work_dir)
    if stale:
        logger.info("removed %d partial files left by an interrupted run", stale)

    # Stage 1: per-file tasks, skipping those a previous run finished.
    summaries: list[dict[str, Any]] = [None] * len(tasks)  # type: ignore[list-item]
    todo = []
    for task in tasks:
        done = load_finished(work_dir, task)
        if done is not None:
            summaries[task.index] = done
        else:
            todo.append(task)
    if len(todo) < len(tasks):
        logger.info(
            "resuming: %d of %d input files already processed", len(tasks) - len(todo), len(tasks)
        )
    setup = WorkerSetup(
        config=config, tokenizer_json=tokenizer.backend.to_str(), eos_id=tokenizer.info.eos_id
    )
    progress.stage("read, clean, filter, tokenize", sum(t.size for t in todo) or None)
    run_stage1 = stage1 or _local_stage1(progress)
    for summary in run_stage1(todo, setup, work_dir, config, options, _read_task):
        summaries[summary["task"]] = summary

    # Stage 2 into a staging directory, renamed into place when complete.
    staging = dataset_dir / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    assembled = (assembler_factory or Assembler)(
        config,
        tasks,
        work_dir,
        staging,
        pad_id=tokenizer.info.pad_id,
        on_stage=progress.stage,
        on_advance=progress.advance,
    ).run()
    progress.stage("write manifest", None)
    tokenizer.save(staging / "tokenizer")
    stats = build_stats(config, tasks, summaries, assembled)
    write_json(staging / "stats.json", stats)
    try:
        from .plots import plot_funnel, plot_lengths

        plot_funnel(stats, staging / "plots" / "funnel.png")
        plot_lengths(assembled.length_histograms, LENGTH_BINS, staging / "plots" / "lengths.png")
    except Exception as exc:  # a plot must never cost the user the build
        logger.warning("could not draw plots: %s", exc)
    manifest_fields = {
        "name": config.name,
        "version": version,
        "created_by": {
            "package": "tinylm-data",
            "version": __version__,
            "code": code_fingerprint(),
        },
        "tokenizer": tokenizer.info.as_dict(),
        "block_size": config.block_size,
        "pack_mode": config.pack_mode,
        "num_blocks": assembled.pack_stats["blocks"],
        "tokens": {k: v for k, v in assembled.pack_stats.items() if k not in {"blocks"}},
        "counts": {
            name: {
                **stats["sources"][name]["accounting"],
                "funnel": stats["sources"][name]["funnel"],
            }
            for name in stats["sources"]
        },
        "inputs": [
            {"source": t.source, "file": t.display_path, "bytes": t.size, "xxh3_128": t.fingerprint}
            for t in tasks
        ],
        "config": config_data,
        "rejects": [f"rejects/{name}" for name in assembled.reject_files],
        "shards": assembled.shards,
    }
    manifest = write_manifest(staging, manifest_fields).raw
    os.replace(staging, out_dir)
    write_text(dataset_dir / "LATEST", version + "\n")
    if not options.keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    return BuildResult(out_dir, manifest, stats)


def build_stats(config: BuildConfig, tasks: list[Task], summaries: list[dict], assembled) -> dict:
    sources: dict[str, Any] = {}
    for source in config.sources:
        mine = [s for t, s in zip(tasks, summaries, strict=True) if t.source == source.name]
        read_rejected: Counter = Counter()
        filtered: Counter = Counter()
        clean_changes: Counter = Counter()
        for summary in mine:
            read_rejected.update(summary["read_rejected"])
            filtered.update(summary["filtered"])
            clean_changes.update(summary["clean_changes"])
        stage2 = assembled.per_source[source.name]
        n_in = sum(s["in"] for s in mine)
        n_rejected = sum(read_rejected.values())
        n_filtered = sum(filtered.values()) + stage2["sampled_out"]
        n_dupes = stage2["exact_dedup"] + stage2["near_dedup"]
        kept = stage2["kept"]
        accounting = {
            "in": n_in,
            "kept": kept,
            "filtered": n_filtered,
            "duplicates": n_dupes,
            "rejected": n_rejected,
        }
        if n_in != kept + n_filtered + n_dupes + n_rejected:
            raise RuntimeError(
                f"document accounting does not close for source {source.name}: {accounting}"
            )
        after_read = n_in - n_rejected
        after_filter = after_read - sum(filtered.values())
        after_exact = after_filter - stage2["exact_dedup"]
        after_near = after_exact - stage2["near_dedup"]
        sources[source.name] = {
            "files": len(mine),
            "bytes": sum(s["bytes"] for s in mine),
            "chars_in": sum(s["chars_in"] for s in mine),
            "accounting": accounting,
            "funnel": {
                "in": n_in,
                "read": after_read,
                "filter": after_filter,
                "exact_dedup": after_exact,
                "near_dedup": after_near,
                "mixture": kept,
            },
            "read_rejected": dict(sorted(read_rejected.items())),
            "filtered": dict(sorted(filtered.items())),
            "clean_changes": dict(sorted(clean_changes.items())),
            "exact_duplicates": stage2["exact_dedup"],
            "near_duplicates": stage2["near_dedup"],
            "sampled_out": stage2["sampled_out"],
            "weight": source.weight,
            "tokens_kept": stage2["tokens_kept"],
            "tokens_packed": stage2["tokens_packed"],
            "documents_packed": stage2["copies_packed"],
        }
    totals = Counter()
    for s in sources.values():
        totals.update(s["accounting"])
    return {"sources": sources, "total": dict(totals), "packing": assembled.pack_stats}
