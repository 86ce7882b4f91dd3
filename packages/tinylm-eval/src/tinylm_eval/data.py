"""Multiple-choice questions read from a release's per-subject CSV files, as its layout describes them."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvLayout:
    """Where a release keeps each subject's questions, and how a row reads: described once per
    benchmark, the same for every subject. Rows are question, options A-D, answer letter."""

    benchmark: str
    file_name: str
    """A subject's file in a split directory, e.g. "{subject}_{split}.csv"; {subject} comes first."""
    splits: tuple[str, ...]
    header: bool
    """The first row names the columns and every row starts with the question's id; without a
    header the id is the row number."""
    subdir: str = ""
    """Split directories sit under this directory when the root has it (MMLU's `data/`)."""
    unanswered_splits: tuple[str, ...] = ()
    """Splits released without answers (C-Eval test)."""

    def split_dir(self, root: Path, split: str) -> Path:
        if self.subdir and (root / self.subdir).is_dir():
            root = root / self.subdir
        if split not in self.splits:
            names = f"{', '.join(self.splits[:-1])} and {self.splits[-1]}"
            raise DataError(f"{self.benchmark} has only {names} splits")
        directory = root / split
        if not directory.is_dir():
            raise DataError(f"{self.benchmark}: no {split} directory under {root}")
        return directory

    def subjects(self, root: Path, split: str) -> list[str]:
        suffix = self.file_name.format(subject="", split=split)
        names = []
        for path in self.split_dir(root, split).glob("*.csv"):
            if not path.name.endswith(suffix):
                expected = self.file_name.format(subject="<subject>", split=split)
                raise DataError(f"{path.name}: expected {expected}")
            names.append(path.name[: -len(suffix)])
        return sorted(names)

    def path(self, root: Path, split: str, subject: str) -> Path:
        return self.split_dir(root, split) / self.file_name.format(subject=subject, split=split)

    def read(self, root: Path, split: str, subject: str) -> list[Question]:
        """All questions of one subject and split. A malformed row raises with its file and line."""
        path = self.path(root, split, subject)
        if not path.is_file():
            raise DataError(f"{self.benchmark}: {path} not found")
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        first = 2 if self.header else 1
        questions = []
        for line, row in enumerate(rows[1:] if self.header else rows, start=first):
            if self.header:
                row_id, fields = row[0], row[1:]
            else:
                fields, row_id = row, str(line - 1)
            question, choices = fields[0], fields[1:5]
            if len(choices) != 4:
                raise DataError(
                    f"{path}:{line}: expected a question and four options, got {len(fields)} fields"
                )
            answer = fields[5].strip() if len(fields) > 5 else None
            if answer is not None and answer not in LETTERS:
                raise DataError(f"{path}:{line}: answer {answer!r} is not one of A-D")
            if answer is None and split not in self.unanswered_splits:
                raise DataError(f"{path}:{line}: missing answer")
            questions.append(
                Question(
                    subject, len(questions), question, tuple(choices), answer, row_id or str(line)
                )
            )
        return questions
