"""The quality stage of the assembly: bands from the scores of the deduplicated documents, the
step that applies them, and the score table of every document judged.

The bands are computed in a first pass over the scores of every document that reaches the stage
(all of them, not a sample: the result depends on the data alone) and recorded in the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..arrow_writers import RowGroupWriter
from ..document import Batch, Rejection
from ..stages import Stage
from ..steps import Step
from .rules import band, describe, group_of
from .scoring import ScoringPlan, read_scores

if TYPE_CHECKING:
    from ..assembly import KeptFiles

NOT_JUDGED, KEPT = -2, -1
TABLE = "quality/scores.parquet"
SNIPPET_CHARS = 300
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


class QualityJudge:
    def __init__(
        self, plan: ScoringPlan, kept: KeptFiles, stage_dir: Path, removed: Mapping[int, Any]
    ) -> None:
        self.plan = plan
        self.kept = kept
        n = int(kept.offsets[-1])
        count = len(plan.scorers)
        self.scores = np.full((count, n), math.nan)
        self.applies = np.zeros((count, n), dtype=bool)
        self.source = np.zeros(n, dtype=np.int32)
        languages = np.empty(n, dtype=object)
        for t, (task, path) in enumerate(zip(kept.tasks, kept.paths, strict=True)):
            lo, hi = int(kept.offsets[t]), int(kept.offsets[t + 1])
            self.source[lo:hi] = task.source_index
            languages[lo:hi] = pq.read_table(path, columns=["language"]).column(0).to_pylist()
            for i in range(count):
                if plan.applies(i, task.source) and hi > lo:
                    self.scores[i, lo:hi] = read_scores(plan.score_file(stage_dir, task, i))
                    self.applies[i, lo:hi] = True
        alive = np.ones(n, dtype=bool)
        alive[np.fromiter(removed, dtype=np.int64, count=len(removed))] = False
        self.group_label: list[np.ndarray] = []
        self.bands: list[dict[str, tuple[float, float]]] = []
        for i, scorer in enumerate(plan.scorers):
            rule = scorer.effective_rule
            per = group_of(rule)
            if per == "source":
                labels = np.array(plan.sources, dtype=object)[self.source]
            elif per == "language":
                labels = languages
            else:
                labels = np.full(n, "all", dtype=object)
            judged = self.applies[i] & alive
            bands = {}
            for label in sorted(set(labels[judged].tolist())):
                mine = self.scores[i, judged & (labels == label)]
                bands[label] = band(rule, mine[np.isfinite(mine)])
            self.group_label.append(labels)
            self.bands.append(bands)
        self.decision = np.full(n, NOT_JUDGED, dtype=np.int16)
        self.unscorable = np.zeros(n, dtype=bool)

    def verdict(self, ordinal: int) -> tuple[int, float, tuple[float, float]] | None:
        """None to keep; else (scorer index, score, band) of the first scorer that drops it."""
        for i in range(len(self.plan.scorers)):
            if not self.applies[i, ordinal]:
                continue
            score = self.scores[i, ordinal]
            low, high = self.bands[i][self.group_label[i][ordinal]]
            if not low <= score <= high:  # NaN fails too
                return i, float(score), (low, high)
        return None

    def judged_mask(self) -> np.ndarray:
        return self.decision != NOT_JUDGED

    def summary(self) -> dict[str, Any]:
        """What the manifest and stats.json record: per scorer its model, rule, bands, counts."""
        judged = self.judged_mask()
        scorers = []
        for i, scorer in enumerate(self.plan.scorers):
            mine = judged & self.applies[i]
            per_source = {}
            for s, name in enumerate(self.plan.sources):
                values = self.scores[i, mine & (self.source == s)]
                values = values[np.isfinite(values)]
                if len(values):
                    qs = np.quantile(values, QUANTILES)
                    per_source[name] = {
                        f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
                    }
            rule = scorer.effective_rule
            scorers.append(
                {
                    "name": scorer.label_name,
                    "kind": scorer.kind,
                    "model": scorer.model,
                    "model_xxh3_128": self.plan.fingerprints[i],
                    "rule": rule.model_dump(mode="json"),
                    "rule_text": describe(rule),
                    "bands": {
                        group: [_finite(lo), _finite(hi)]
                        for group, (lo, hi) in self.bands[i].items()
                    },
                    "judged": int(mine.sum()),
                    "removed": int((self.decision == i).sum()),
                    "unscorable": int((self.unscorable & (self.decision == i)).sum()),
                    "quantiles": per_source,
                }
            )
        return {"table": TABLE, "judged": int(judged.sum()), "scorers": scorers}

    def write_table(self, out_dir: Path) -> None:
        """`quality/scores.parquet`: every judged document in build order, kept or not."""
        names = [s.label_name for s in self.plan.scorers]
        schema = pa.schema(
            [
                ("doc_id", pa.string()),
                ("source", pa.string()),
                ("language", pa.string()),
                ("kept", pa.bool_()),
                ("dropped_by", pa.string()),
                *[(name, pa.float64()) for name in names],
                ("text", pa.string()),  # the first characters, to look at
            ]
        )
        (out_dir / "quality").mkdir(parents=True, exist_ok=True)
        writer = RowGroupWriter(out_dir / TABLE, schema)
        try:
            for t, (task, path) in enumerate(zip(self.kept.tasks, self.kept.paths, strict=True)):
                lo, hi = int(self.kept.offsets[t]), int(self.kept.offsets[t + 1])
                decision = self.decision[lo:hi]
                rows = np.nonzero(decision != NOT_JUDGED)[0]
                if len(rows) == 0:
                    continue
                table = pq.read_table(path, columns=["doc_id", "language", "text"]).take(rows)
                picked = decision[rows]
                columns = {
                    "doc_id": table.column("doc_id"),
                    "source": pa.array([task.source] * len(rows), pa.string()),
                    "language": table.column("language"),
                    "kept": pa.array(picked == KEPT),
                    "dropped_by": pa.array(
                        [None if d == KEPT else names[d] for d in picked.tolist()], pa.string()
                    ),
                }
                for i, name in enumerate(names):
                    values = self.scores[i, lo:hi][rows]
                    present = self.applies[i, lo:hi][rows]
                    columns[name] = pa.array(values, pa.float64(), mask=~present)
                columns["text"] = pc.utf8_slice_codeunits(table.column("text"), 0, SNIPPET_CHARS)
                writer.write(pa.table(columns, schema=schema))
        finally:
            writer.close()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class QualityStep(Step):
    """Drops the documents a scorer's band excludes; records every decision in the judge."""

    stage = Stage.QUALITY

    def __init__(self, judge: QualityJudge) -> None:
        self.judge = judge

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejection]]:
        judge = self.judge
        kept, rejected = [], []
        for row in batch.rows:
            verdict = judge.verdict(row.ordinal)
            if verdict is None:
                judge.decision[row.ordinal] = KEPT
                kept.append(row)
                continue
            index, score, (low, high) = verdict
            judge.decision[row.ordinal] = index
            scorer = judge.plan.scorers[index]
            name = scorer.label_name
            group = judge.group_label[index][row.ordinal]
            if math.isnan(score):
                judge.unscorable[row.ordinal] = True
                reason, detail = "unscorable", f"{name}: no score (too short for the model)"
            else:
                reason = f"low_{name}" if score < low else f"high_{name}"
                detail = (
                    f"{name} {score:.6g} outside [{low:.6g}, {high:.6g}] "
                    f"({describe(scorer.effective_rule)}; group {group})"
                )
            rejected.append(batch.rejection(row, self.stage, reason, detail))
        batch.rows = kept
        return batch, rejected
