"""Read MMLU, C-Eval and CMMLU from a local directory in each benchmark's official layout."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BENCHMARKS = ("mmlu", "ceval", "cmmlu")
LETTERS = ("A", "B", "C", "D")
SAMPLE_DIR = Path(__file__).parent / "sample_data"


@dataclass(frozen=True, slots=True)
class Question:
    """One multiple-choice question; `answer` is None where the split has no public answers (C-Eval test)."""

    subject: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: str | None
    id: str


class DataError(ValueError):
    """A benchmark file that does not follow its official layout."""


def _split_dir(benchmark: str, root: Path, split: str) -> Path:
    if benchmark == "mmlu" and (root / "data").is_dir():
        root = root / "data"
    if benchmark == "cmmlu" and split == "val":
        raise DataError("CMMLU has only dev and test splits")
    directory = root / split
    if not directory.is_dir():
        raise DataError(f"{benchmark}: no {split} directory under {root}")
    return directory


def _subject_of(benchmark: str, path: Path, split: str) -> str:
    if benchmark == "cmmlu":
        return path.stem
    suffix = f"_{split}"
    if not path.stem.endswith(suffix):
        raise DataError(f"{path.name}: expected <subject>{suffix}.csv")
    return path.stem[: -len(suffix)]


def list_subjects(benchmark: str, root: Path, split: str) -> list[str]:
    directory = _split_dir(benchmark, root, split)
    return sorted(_subject_of(benchmark, p, split) for p in directory.glob("*.csv"))


def _file(benchmark: str, root: Path, split: str, subject: str) -> Path:
    name = f"{subject}.csv" if benchmark == "cmmlu" else f"{subject}_{split}.csv"
    return _split_dir(benchmark, root, split) / name


def read_subject(benchmark: str, root: Path, split: str, subject: str) -> list[Question]:
    """All questions of one subject and split. A malformed row raises with its file and line."""
    path = _file(benchmark, root, split, subject)
    if not path.is_file():
        raise DataError(f"{benchmark}: {path} not found")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    has_header = benchmark != "mmlu"
    questions = []
    for line, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        if benchmark == "mmlu":
            fields, row_id = row, str(line - 1)
        else:
            row_id, fields = row[0], row[1:]
        question, choices = fields[0], fields[1:5]
        if len(choices) != 4:
            raise DataError(
                f"{path}:{line}: expected a question and four options, got {len(fields)} fields"
            )
        answer = fields[5].strip() if len(fields) > 5 else None
        if answer is not None and answer not in LETTERS:
            raise DataError(f"{path}:{line}: answer {answer!r} is not one of A-D")
        if answer is None and not (benchmark == "ceval" and split == "test"):
            raise DataError(f"{path}:{line}: missing answer")
        questions.append(
            Question(subject, len(questions), question, tuple(choices), answer, row_id or str(line))
        )
    return questions


def resolve_data_dir(benchmark: str, data: str | None) -> Path:
    """`sample` → the authored sample shipped with the package; a path → itself; None → the hub download."""
    if data == "sample":
        return SAMPLE_DIR / benchmark
    if data is None:
        from tinylm_eval.download import download_benchmark

        return download_benchmark(benchmark)
    path = Path(data)
    if not path.is_dir():
        raise DataError(f"--data {data}: not a directory")
    return path
