"""The engine interface a build is handed, and the local engine (process pools on one machine).

An engine runs the parts of a build that need many cores: stage-1 tasks and the duplicate
search. The build owns everything else (planning, the assembly pass, publishing), so every
engine gives the same bytes. The Spark engine lives in `spark_engine`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .assembly import (
    KeptFiles,
    Removal,
    local_exact_duplicates,
    local_near_duplicates,
)
from .config import BuildConfig
from .progress import Progress
from .stage_one import StageOneJob, Task, TaskRunner, task_files
from .stage_one_worker import TokenizerThreads

if TYPE_CHECKING:
    from .quality.scoring import ScoringPlan

PARALLEL_OVER = ("auto", "files", "batches")


class Engine(Protocol):
    def run_tasks(
        self, tasks: list[Task], job: StageOneJob, progress: Progress
    ) -> Iterable[dict[str, Any]]:
        """Runs stage 1 for `tasks`, yielding each task's summary (any order)."""
        ...

    def exact_duplicates(self, kept: KeptFiles, config: BuildConfig) -> dict[int, Removal]:
        """Global ordinal of every exact duplicate -> its removal (first occurrence kept)."""
        ...

    def near_duplicates(
        self,
        kept: KeptFiles,
        config: BuildConfig,
        removed: Mapping[int, Removal],
        work_dir: Path,
    ) -> dict[int, Removal]:
        """Near duplicates among the documents not already `removed`."""
        ...

    def quality_scores(
        self,
        work: list[tuple[Task, tuple[int, ...]]],
        plan: ScoringPlan,
        stage_dir: Path,
        progress: Progress,
    ) -> float:
        """Writes the score files of each (task, scorer indices); returns the scoring seconds."""
        ...


class LocalEngine:
    """Whole files in parallel when there are enough of them, else batches of one file at a time.

    File-parallel workers read, process and write their files themselves, so the main process
    only waits; with fewer files than twice the workers, one large file would leave the other
    workers idle, so its batches are spread over the pool instead.
    """

    def __init__(self, workers: int = 0, parallel_over: str = "auto") -> None:
        if parallel_over not in PARALLEL_OVER:
            raise ValueError(f"parallel_over must be auto, files or batches: {parallel_over!r}")
        self.workers = max(1, min(workers or os.cpu_count() or 1, os.cpu_count() or 1))
        self.parallel_over = parallel_over

    def run_tasks(
        self, tasks: list[Task], job: StageOneJob, progress: Progress
    ) -> Iterator[dict[str, Any]]:
        by_files = self.parallel_over == "files" or (
            self.parallel_over == "auto" and len(tasks) >= 2 * self.workers
        )
        if self.workers > 1 and by_files:
            yield from _file_parallel(tasks, self.workers, progress, job)
            return
        threads = TokenizerThreads.sharing(self.workers)
        with job.runner(workers=self.workers, threads=threads) as runner:
            for task in tasks:
                yield runner.run(task)
                progress.advance(task.size)

    def exact_duplicates(self, kept: KeptFiles, config: BuildConfig) -> dict[int, Removal]:
        return local_exact_duplicates(kept)

    def near_duplicates(
        self,
        kept: KeptFiles,
        config: BuildConfig,
        removed: Mapping[int, Removal],
        work_dir: Path,
    ) -> dict[int, Removal]:
        return local_near_duplicates(kept, config, removed, work_dir)

    def quality_scores(
        self,
        work: list[tuple[Task, tuple[int, ...]]],
        plan: ScoringPlan,
        stage_dir: Path,
        progress: Progress,
    ) -> float:
        # In this process: the models' own threads use the cores, and each loads once.
        from .quality.scoring import score_task_locally

        seconds = 0.0
        for task, indices in work:
            kept = task_files(stage_dir, task)["kept"]
            seconds += score_task_locally(plan, stage_dir, kept, task, indices)
            progress.advance(1)
        return seconds


_FILE_RUNNER: TaskRunner | None = None


def _init_file_worker(job: StageOneJob, threads: TokenizerThreads) -> None:
    global _FILE_RUNNER
    _FILE_RUNNER = job.runner(workers=1, threads=threads, in_worker=True)
    _FILE_RUNNER.__enter__()


def _run_file_task(task: Task) -> dict[str, Any]:
    assert _FILE_RUNNER is not None
    return _FILE_RUNNER.run(task)


def _file_parallel(tasks: list[Task], workers: int, progress: Progress, job: StageOneJob):
    """One task per worker at a time, largest first (so a big file does not start last)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .tokenizer import forking_encoders

    queue = sorted(tasks, key=lambda t: (-t.size, t.index))
    threads = TokenizerThreads.sharing(workers)
    with (
        forking_encoders(),
        ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("fork"),
            initializer=_init_file_worker,
            initargs=(job, threads),
        ) as pool,
    ):
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
