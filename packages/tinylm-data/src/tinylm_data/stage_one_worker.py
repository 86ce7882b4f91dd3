"""What a stage-1 worker process does to a batch: run the declared steps (`steps.stage_one_steps`).

Workers are started once per build and keep their step chain in a module global, so a batch
carries only `(doc_id, text, line)` triples across the process boundary. A worker whose start-up
fails keeps the error and raises it for every batch it is given: a pool initializer that raised
would be restarted forever (multiprocessing.Pool) or die without saying why (ProcessPoolExecutor).
Everything here is deterministic: a batch gives the same result in any worker.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from .config import BuildConfig
from .document import Batch, Rejection, Row
from .faults import fail_point
from .steps import Step, StepChain, stage_one_steps


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What every worker needs, sent once when the pool starts."""

    config: BuildConfig
    tokenizer_json: str
    eos_id: int
    extra_steps: tuple[Step, ...] = ()  # run on the kept documents, after the built-in steps


@dataclass(slots=True)
class BatchResult:
    kept: list[Row] = field(default_factory=list)  # text dropped, num_chars kept
    rejections: list[Rejection] = field(default_factory=list)
    changes: Counter = field(default_factory=Counter)
    chars_in: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class WorkerStartError(RuntimeError):
    """A build worker could not set itself up; the message is the original error."""


_CHAIN: StepChain | None = None
_START_ERROR: str | None = None
_TEXT_KEPT = 0  # characters of each kept document's text that stay (for the quality scorers)


def tokenizer_threads(workers: int, cores: int | None = None) -> int:
    """Threads of each worker's tokenizer pool when `workers` processes share the machine: its
    cores divided among them, at least one (one in-process worker gets every core)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


@dataclass(frozen=True, slots=True)
class TokenizerThreads:
    """How a worker encodes: `threads` for the tokenizer's pool, which the user `allowed` (read
    in the parent: a worker forked inside `tokenizer.forking_encoders` does not see the user's
    TOKENIZERS_PARALLELISM)."""

    threads: int = 1
    allowed: bool = True

    @classmethod
    def sharing(cls, workers: int) -> TokenizerThreads:
        from .tokenizer import thread_pool_allowed

        return cls(tokenizer_threads(workers), thread_pool_allowed())


ONE_THREAD = TokenizerThreads()


def init_worker(
    setup: WorkerSetup, threads: TokenizerThreads = ONE_THREAD, forked: bool = True
) -> None:
    """Set up this process's step chain. `forked`: this is a pool worker (not the process that
    started the build), forked inside `tokenizer.forking_encoders`."""
    global _CHAIN, _START_ERROR, _TEXT_KEPT
    from .tokenizer import use_thread_pool

    _TEXT_KEPT = setup.config.quality.text_chars()
    use_thread_pool(threads.threads, allowed=threads.allowed, forked=forked)
    try:
        fail_point("worker_start")
        _CHAIN = StepChain(
            stage_one_steps(setup.config, setup.tokenizer_json, setup.eos_id, setup.extra_steps)
        )
        _START_ERROR = None
    except Exception as exc:  # reported by the first batch, in the main process
        _CHAIN, _START_ERROR = None, f"{type(exc).__name__}: {exc}"


def process_batch(
    source_index: int, source: str, file: str, docs: list[tuple[str, str, int | None]]
) -> BatchResult:
    if _START_ERROR is not None:
        raise WorkerStartError(f"a build worker could not start: {_START_ERROR}")
    if _CHAIN is None:
        raise RuntimeError("init_worker was not called in this process")
    rows = [Row(doc_id, line, text) for doc_id, text, line in docs]
    chars_in = sum(len(row.text) for row in rows)
    chained = _CHAIN(Batch(source_index, source, file, rows))
    for row in chained.batch.rows:
        row.num_chars, row.text = len(row.text), row.text[:_TEXT_KEPT]
    return BatchResult(
        kept=chained.batch.rows,
        rejections=chained.rejections,
        changes=chained.batch.changes,
        chars_in=chars_in,
        seconds=chained.seconds,
    )
