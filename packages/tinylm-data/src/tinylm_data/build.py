"""A whole build: plan tasks, run stage 1 (resumable), assemble, and publish atomically.

Output: OUT/<name>/<version>/ appears in one rename once complete, then OUT/<name>/LATEST points
at it. Intermediate work lives in OUT/<name>/.work-<version>/ and survives a killed run, so a
rerun with the same inputs and configuration (hence the same version) continues where it stopped.
With `BuildOptions.publish_to` (a URL `--out`), OUT is the local work root and the finished
version is then published to the URL (`publish`).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinylm_shards import write_manifest

from . import __version__
from .assembly import LENGTH_BINS, Assembly
from .atomic import remove_temporaries, write_json, write_text
from .build_stats import build_stats
from .config import BuildConfig
from .fingerprint import code_fingerprint, file_fingerprint, version_id
from .progress import Progress
from .publish import RemoteRoot, finished_version, publish_version
from .quality.scoring import ScoringPlan
from .readers.storage import input_size
from .stage_one import StageOneJob, Task, load_finished, stage_one_identity, task_key
from .stage_one_worker import WorkerSetup
from .stages import STAGE_ONE, Stage
from .steps import Step, declared_token_columns
from .tokenizer import LoadedTokenizer

if TYPE_CHECKING:
    from .engines import Engine

logger = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    out_root: Path
    workers: int = max(os.cpu_count() or 1, 1)
    batch_size: int = 256
    strict: bool = False
    keep_work: bool = False
    # Local engine only. "files": each worker takes whole input files; "batches": the workers
    # share each file's batches; "auto": files when there are at least twice as many files as
    # workers.
    parallel_over: str = "auto"
    # A build that keeps no document is refused unless this is set.
    allow_empty: bool = False
    # Where the finished version is published (a URL `--out`); `out_root` is then the local
    # work root. Check it with `RemoteRoot.check_writable` before building (the CLI does).
    publish_to: RemoteRoot | None = None


class EmptyBuildError(RuntimeError):
    """The build kept no document; publishing it would hand training an empty dataset."""


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False
    stage_one_reused: int = 0  # input files whose stage-1 results an earlier build left
    published: str | None = None  # the version's URL when it was published there


STAGE_ONE_DIR = ".stage1"
"""OUT/<name>/.stage1/: per-file stage-1 results, shared by the builds of one dataset name."""


def plan_tasks(config: BuildConfig, base: Path, identity: dict[str, Any]) -> list[Task]:
    """One task per input file, or per unit of a file larger than `config.split_bytes` (in file
    order); `identity` (`stage_one_identity`) goes into every task's key."""
    from .readers import expand_paths, file_layout
    from .readers.storage import input_is_file, is_url
    from .readers.units import file_units

    tasks: list[Task] = []
    for source_index, source in enumerate(config.sources):
        for path in expand_paths(source.paths, base):
            if is_url(path):
                display = path
            else:
                try:
                    display = path.resolve().relative_to(base.resolve()).as_posix()
                except ValueError:
                    display = path.name
            readable = input_is_file(path)
            fingerprint = file_fingerprint(path) if readable else "unreadable"
            size = input_size(path) if readable else 0
            units = (
                file_units(
                    path,
                    layout=file_layout(source.kind, path),
                    size=size,
                    split_bytes=config.split_bytes,
                )
                if readable
                else None
            )
            for unit in units or [None]:
                tasks.append(
                    Task(
                        index=len(tasks),
                        source_index=source_index,
                        source=source.name,
                        kind=source.kind,
                        path=path,
                        display_path=display,
                        fingerprint=fingerprint,
                        size=size if unit is None else _unit_bytes(unit, size, len(units)),
                        key=task_key(
                            identity,
                            source,
                            fingerprint=fingerprint,
                            display_path=display,
                            unit=unit,
                        ),
                        unit=unit,
                    )
                )
            if units:
                logger.info(
                    "%s: %d units of about %d bytes", display, len(units), size // len(units)
                )
    return tasks


def _unit_bytes(unit, size: int, count: int) -> int:
    """Bytes of a unit, for progress and stats (row groups: an even share of the file)."""
    if unit.kind == "bytes":
        return unit.end - unit.start
    share = size // count
    return size - share * (count - 1) if unit.index == count - 1 else share


def run_build(
    config: BuildConfig,
    base: Path,
    options: BuildOptions,
    progress: Progress | None = None,
    *,
    engine: Engine | None = None,
    extra_steps: Sequence[Step] = (),
) -> BuildResult:
    """Build `config` (paths relative to `base`) under `options.out_root`.

    `engine` runs stage 1 and the duplicate search (default: a `LocalEngine` with the options'
    workers). `extra_steps` (stage `KEPT`) run on the kept documents after the built-in stage-1
    steps, for instance to add a per-token column; engines that send them to other processes
    pickle them. Their class names join the code version, so they change the version id.
    """
    from .engines import LocalEngine

    progress = progress or Progress()
    engine = engine or LocalEngine(options.workers, options.parallel_over)
    token_columns = declared_token_columns(extra_steps)
    progress.stage("load tokenizer, hash inputs", None)
    tokenizer = LoadedTokenizer(config.tokenizer, base)  # first: a missing one fails in seconds
    package_code = code_fingerprint()  # hashes every data-path module: once per build
    code_version = package_code + "".join(
        f";{type(s).__module__}.{type(s).__qualname__}" for s in extra_steps
    )
    identity = stage_one_identity(
        config, tokenizer_sha256=tokenizer.info.sha256, code_version=code_version
    )
    quality = ScoringPlan.of(config, base, code_version)  # a missing model fails here
    tasks = plan_tasks(config, base, identity)
    # Without scorers the config reads as it did before the quality stage (same version ids).
    # split_bytes decides how the work is cut, never what it gives: not part of the version.
    config_data = config.model_dump(
        mode="json",
        exclude={"split_bytes"} | (set() if config.quality.enabled else {"quality"}),
    )
    files = [t for t in tasks if t.first_of_file]
    version = version_id(
        inputs=[
            {"source": t.source, "file": t.display_path, "content": t.fingerprint} for t in files
        ]
        + (quality.inputs() if quality is not None else []),
        config=config_data,
        code_version=code_version,
        tokenizer_sha256=tokenizer.info.sha256,
    )
    dataset_dir = options.out_root / config.name
    out_dir = dataset_dir / version
    done = finished_version(dataset_dir, version, options.publish_to, keep_local=options.keep_work)
    if done is not None:
        if done.url is not None and not options.keep_work:  # an upload this run finished
            shutil.rmtree(dataset_dir / f".work-{version}", ignore_errors=True)
        return BuildResult(out_dir, done.manifest, done.stats, reused=True, published=done.url)
    work_dir = dataset_dir / f".work-{version}"
    stage_dir = dataset_dir / STAGE_ONE_DIR
    stale = remove_temporaries(work_dir) + remove_temporaries(stage_dir)
    if stale:
        logger.info("removed %d partial files left by an interrupted run", stale)

    # Stage 1: per-file tasks, skipping those an earlier build finished with the same key.
    summaries: list[dict[str, Any]] = [None] * len(tasks)  # type: ignore[list-item]
    todo = []
    for task in tasks:
        done = load_finished(stage_dir, task)
        if done is not None:
            summaries[task.index] = done
        else:
            todo.append(task)
    if len(todo) < len(tasks):
        logger.info(
            "stage 1: reusing the results of %d of %d tasks (input files or units)",
            len(tasks) - len(todo),
            len(tasks),
        )
    setup = WorkerSetup(
        config=config,
        tokenizer_json=tokenizer.json,
        eos_id=tokenizer.info.eos_id,
        extra_steps=tuple(extra_steps),
    )
    job = StageOneJob(config, setup, stage_dir, options.batch_size, options.strict)
    progress.stage(", ".join(STAGE_ONE), sum(t.size for t in todo) or None)
    for summary in engine.run_tasks(todo, job, progress):
        summaries[summary["task"]] = summary
    scoring_seconds = 0.0
    if quality is not None:
        scoring = quality.todo(stage_dir, tasks)
        progress.stage(f"{Stage.QUALITY} scores", len(scoring) or None)
        scoring_seconds = engine.quality_scores(scoring, quality, stage_dir, progress)

    # Stage 2 into a staging directory, renamed into place when complete.
    staging = dataset_dir / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    assembled = Assembly(
        config,
        tasks,
        stage_dir,
        work_dir,
        staging,
        pad_id=tokenizer.info.pad_id,
        token_columns=token_columns,
        engine=engine,
        progress=progress,
        quality=quality,
    ).run()
    progress.stage("write manifest", None)
    tokenizer.save(staging / "tokenizer")
    stats = build_stats(config, tasks, summaries, assembled, scoring_seconds=scoring_seconds)
    if stats["total"]["kept"] == 0 and not options.allow_empty:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmptyBuildError(_empty_build_message(stats["total"], len(tasks)))
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
            "code": package_code,
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
            {
                "source": t.source,
                "file": t.display_path,
                "bytes": input_size(t.path) if t.unit else t.size,
                "xxh3_128": t.fingerprint,
            }
            for t in files
        ],
        "config": config_data,
        **({"quality": assembled.quality} if assembled.quality is not None else {}),
        "rejects": [f"rejects/{name}" for name in assembled.reject_files],
        "shards": assembled.shards,
    }
    if config.validation_share > 0:
        manifest_fields["splits"] = {
            "validation": {
                "shards": assembled.validation_shards,
                "num_blocks": assembled.validation_pack_stats["blocks"],
                "documents": assembled.validation_pack_stats["documents"],
                "share": config.validation_share,
                "tokens": {
                    k: v for k, v in assembled.validation_pack_stats.items() if k != "blocks"
                },
            }
        }
    manifest = write_manifest(staging, manifest_fields).raw
    os.replace(staging, out_dir)
    write_text(dataset_dir / "LATEST", version + "\n")
    url = publish_version(dataset_dir, version, options.publish_to, keep_local=options.keep_work)
    if not options.keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
        _keep_only(stage_dir, {t.key for t in tasks})
    return BuildResult(
        out_dir, manifest, stats, stage_one_reused=len(tasks) - len(todo), published=url
    )


def _keep_only(stage_dir: Path, stems: set[str]) -> None:
    """Delete the stage-1 files of tasks this build did not use (one copy of the latest inputs)."""
    for path in stage_dir.iterdir() if stage_dir.is_dir() else ():
        if path.name.split(".", 1)[0] not in stems:
            path.unlink(missing_ok=True)


def _empty_build_message(total: dict[str, int], files: int) -> str:
    if total["in"] == 0:
        found = f"the {files} input file(s) hold no document"
    else:
        removed = ", ".join(f"{total[k]:,} {k}" for k in ("rejected", "filtered", "duplicates"))
        found = f"all {total['in']:,} input documents were removed ({removed})"
    return f"nothing to build: {found} (--allow-empty publishes an empty dataset anyway)"
