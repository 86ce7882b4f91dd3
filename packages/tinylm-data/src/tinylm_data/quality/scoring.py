"""Scores per input file: computed once, after stage 1, kept beside its results.

Stage 1 keeps the first characters of every kept document (`text` in its kept file, only when
the build has scorers). Each scorer then scores each task's documents in order, into
`.stage1/<task key>.quality-<scorer key>.parquet` (one float64 `score` per kept document). The
scorer key covers the scorer's settings, its model files and the code, not its rule: a new
threshold reuses every score, a new model rescores, and a killed build rescores only the files
it had not finished.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from ..arrow_writers import WORK_PARQUET_OPTIONS
from ..atomic import atomic_path
from ..config import BuildConfig, ConfigError
from ..fingerprint import file_fingerprint
from .config import ScorerConfig

if TYPE_CHECKING:
    from ..stage_one import Task

SCORE_SCHEMA = pa.schema([("score", pa.float64())])


def model_fingerprint(path: Path) -> str:
    """xxh3-128 over a model file, or over every file of a model directory (names and bytes)."""
    if path.is_file():
        return file_fingerprint(path)
    digest = xxhash.xxh3_128()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file_fingerprint(file).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ScoringPlan:
    """The scorers of a build with their resolved models; what every engine needs to score."""

    scorers: tuple[ScorerConfig, ...]
    models: tuple[Path, ...]
    fingerprints: tuple[str, ...]
    sources: tuple[str, ...]  # the build's source names, in config order
    code: str

    @classmethod
    def of(cls, config: BuildConfig, base: Path, code_version: str) -> ScoringPlan | None:
        """None without scorers; a missing model or unknown source is a `ConfigError`."""
        scorers = tuple(config.quality.scorers)
        if not scorers:
            return None
        names = [s.name for s in config.sources]
        models = []
        for scorer in scorers:
            where = f"quality.scorers.{scorer.label_name}"
            needed = "fasttext" if scorer.kind == "classifier" else "torch"
            if importlib.util.find_spec(needed) is None:
                raise ConfigError(
                    f"{where}: the {scorer.kind} scorer needs {needed}: "
                    "pip install 'tinylm-data[quality]'"
                )
            unknown = sorted(set(scorer.sources or ()) - set(names))
            if unknown:
                raise ConfigError(f"{where}.sources: unknown source(s) {', '.join(unknown)}")
            path = Path(scorer.model).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.exists():
                raise ConfigError(
                    f"{where}.model: {scorer.model} does not exist (looked in {path})"
                )
            if scorer.kind != "classifier" and not (path / "config.json").is_file():
                raise ConfigError(
                    f"{where}.model: {scorer.model} is not a transformers model directory "
                    "(no config.json)"
                )
            models.append(path.resolve())
        return cls(
            scorers,
            tuple(models),
            tuple(model_fingerprint(m) for m in models),
            tuple(names),
            code_version,
        )

    def applies(self, index: int, source: str) -> bool:
        wanted = self.scorers[index].sources
        return wanted is None or source in wanted

    def scorer_key(self, index: int) -> str:
        scorer = self.scorers[index]
        payload = {
            "settings": scorer.model_dump(mode="json", exclude={"rule", "name", "sources"}),
            "model": self.fingerprints[index],
            "code": self.code,
        }
        return xxhash.xxh3_64_hexdigest(json.dumps(payload, sort_keys=True).encode())

    def score_file(self, stage_dir: Path, task: Task, index: int) -> Path:
        return stage_dir / f"{task.key}.quality-{self.scorer_key(index)}.parquet"

    def todo(self, stage_dir: Path, tasks: list[Task]) -> list[tuple[Task, tuple[int, ...]]]:
        """The tasks with scores still to compute, each with the indices of those scorers."""
        work = []
        for task in tasks:
            missing = tuple(
                i
                for i in range(len(self.scorers))
                if self.applies(i, task.source)
                and not self.score_file(stage_dir, task, i).is_file()
            )
            if missing:
                work.append((task, missing))
        return work

    def inputs(self) -> list[dict[str, str]]:
        """What the version id learns of the models."""
        return [
            {"quality_model": s.label_name, "content": fp}
            for s, fp in zip(self.scorers, self.fingerprints, strict=True)
        ]


def score_texts(plan: ScoringPlan, index: int, texts: list[str]) -> np.ndarray:
    from .scorers import load_scorer

    return load_scorer(plan.scorers[index], plan.models[index]).score(texts)


def write_scores(path: Path, scores: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        table = pa.Table.from_arrays([pa.array(scores, pa.float64())], schema=SCORE_SCHEMA)
        pq.write_table(table, tmp, **WORK_PARQUET_OPTIONS)


def read_scores(path: Path) -> np.ndarray:
    return pq.read_table(path).column("score").to_numpy()


def score_task_locally(
    plan: ScoringPlan, stage_dir: Path, kept_file: Path, task: Task, indices: tuple[int, ...]
) -> float:
    """Scores one task's kept documents with each scorer in `indices`; returns the seconds."""
    start = perf_counter()
    texts = pq.read_table(kept_file, columns=["text"]).column("text").to_pylist()
    for index in indices:
        write_scores(plan.score_file(stage_dir, task, index), score_texts(plan, index, texts))
    return perf_counter() - start
