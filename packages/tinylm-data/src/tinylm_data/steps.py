"""The step contract (a batch in; the batch of survivors plus rejections out) and a chain of steps.

Stage 1 (`stage_one_steps`) and the assembly (`assembly.assembly_steps`) are both declared as
lists of steps; `StepChain` runs them in order and times each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, ClassVar

from .document import Batch, Rejection
from .stages import Stage

if TYPE_CHECKING:
    from .config import BuildConfig


class Step:
    """One stage's work on a batch. Subclasses set `stage` and implement `__call__`.

    A step that adds per-token columns to the rows it keeps declares them in `token_columns`
    (name -> numpy dtype); the columns are written through packing into the shards.
    """

    stage: ClassVar[Stage]
    token_columns: ClassVar[Mapping[str, str]] = {}

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        raise NotImplementedError


@dataclass
class ChainResult:
    batch: Batch
    rejections: list[Rejection]
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


class StepChain:
    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)

    def __call__(self, batch: Batch) -> ChainResult:
        result = ChainResult(batch, [])
        for step in self.steps:
            if not result.batch.rows:
                break
            start = perf_counter()
            result.batch, removed = step(result.batch)
            elapsed = perf_counter() - start
            result.seconds[step.stage] = result.seconds.get(step.stage, 0.0) + elapsed
            result.rejections.extend(removed)
        return result


def declared_token_columns(steps: Sequence[Step]) -> dict[str, str]:
    """Every per-token column the steps add, checked for clashes with the built-in columns."""
    reserved = {"input_ids", "doc_offsets", "num_tokens", "doc_ids", "is_partial", "tokens"}
    columns: dict[str, str] = {}
    for step in steps:
        for name, dtype in step.token_columns.items():
            if name in reserved or name in columns:
                raise ValueError(f"step {type(step).__name__}: token column {name!r} is taken")
            columns[name] = dtype
    return columns


# --- stage 1: per-document work on the batches of one input file -------------------------------


class CleanStep(Step):
    stage = Stage.CLEAN

    def __init__(self, config: BuildConfig) -> None:
        from .clean import Cleaner, default_rules

        self.cleaners = [
            Cleaner(src.clean if src.clean is not None else default_rules(src.language))
            for src in config.sources
        ]
        self.max_chars = config.filters.max_chars

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        cleaner = self.cleaners[batch.source_index]
        for row in batch.rows:
            if self.max_chars is not None and len(row.text) > 2 * self.max_chars:
                # Far over the limit: cleaning cannot bring it under, so spare the regexes
                # 50 MB; the filter step drops it as too_long.
                continue
            row.text, changed = cleaner(row.text)
            batch.changes.update(changed)
        return batch, []


class FilterStep(Step):
    stage = Stage.FILTER

    def __init__(self, config: BuildConfig) -> None:
        self.config = config

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        from .filters import detect_language, explain_filters

        declared = self.config.sources[batch.source_index].language
        kept, rejected = [], []
        for row in batch.rows:
            row.language = detect_language(row.text) if declared == "auto" else declared
            failure = explain_filters(row.text, row.language, self.config.filters)
            if failure is None:
                kept.append(row)
            else:
                rejected.append(batch.rejection(row, self.stage, *failure))
        batch.rows = kept
        return batch, rejected


class TokenizeStep(Step):
    stage = Stage.TOKENIZE

    def __init__(self, tokenizer_json: str, eos_id: int) -> None:
        from .tokenizer import backend_of

        self.tokenizer = backend_of(tokenizer_json)
        self.eos_id = eos_id

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        from .tokenizer import encode_documents

        token_lists = encode_documents(self.tokenizer, [r.text for r in batch.rows], self.eos_id)
        for row, tokens in zip(batch.rows, token_lists, strict=True):
            row.tokens = tokens
        return batch, []


class HashStep(Step):
    stage = Stage.HASH

    def __init__(self, config: BuildConfig) -> None:
        self.exact = config.dedup.exact
        self.near = config.dedup.near if config.dedup.near.enabled else None

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        from .textnorm import key_of_normalised, normalise

        # One normalisation per document serves the exact key and the character shingles.
        chars = self.near is not None and self.near.shingle != "words"
        normalised = (
            [normalise(r.text) for r in batch.rows]
            if self.exact or chars
            else [None] * len(batch.rows)
        )
        if self.exact:
            for row, text in zip(batch.rows, normalised, strict=True):
                row.key = key_of_normalised(text)
        if self.near is not None:
            from .dedup import document_shingles, minhash_signatures

            near = self.near
            sets = [
                document_shingles(
                    r.text,
                    r.language,
                    scheme=near.shingle,
                    ngram=near.ngram,
                    ngram_zh=near.ngram_zh,
                    ngram_chars=near.ngram_chars,
                    normalised=text,
                )
                for r, text in zip(batch.rows, normalised, strict=True)
            ]
            signatures = minhash_signatures(sets, num_perm=near.num_perm, seed=near.seed)
            for row, signature in zip(batch.rows, signatures, strict=True):
                row.signature = signature
        return batch, []


def stage_one_steps(
    config: BuildConfig, tokenizer_json: str, eos_id: int, extra: Sequence[Step] = ()
) -> list[Step]:
    """The per-document chain of stage 1, in order; `extra` steps run on the kept documents."""
    for step in extra:
        if step.stage is not Stage.KEPT:
            raise ValueError(f"extra step {type(step).__name__} must have stage {Stage.KEPT}")
    return [
        CleanStep(config),
        FilterStep(config),
        TokenizeStep(tokenizer_json, eos_id),
        HashStep(config),
        *extra,
    ]
