"""Scoring on Spark: a grouped Arrow UDF, one group per input file, each model loaded once per
executor Python worker (`scorers.load_scorer` caches it).

A group holds one file's kept documents; the UDF sorts them by ordinal and scores them with the
local engine's code (`scoring.score_texts`), so the batches, and the floats, are the local
engine's. The driver writes the score files, as the local engine does.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np

from ..stage_one import Task, task_files
from .scoring import ScoringPlan, write_scores

if TYPE_CHECKING:
    from ..progress import Progress

RESULT_SCHEMA = "item long, scorer int, ordinal long, score double"


def spark_quality_scores(
    spark,
    work: list[tuple[Task, tuple[int, ...]]],
    plan: ScoringPlan,
    stage_dir: Path,
    progress: Progress,
) -> float:
    from pyspark.sql import functions as F

    if not work:
        return 0.0
    start = perf_counter()
    items = spark.createDataFrame(
        [
            (task_files(stage_dir, task)["kept"].resolve().as_uri(), item)
            for item, (task, _) in enumerate(work)
        ],
        "file string, item long",
    )
    wanted = {item: indices for item, (_, indices) in enumerate(work)}
    paths = [str(task_files(stage_dir, task)["kept"]) for task, _ in work]
    docs = (
        spark.read.parquet(*paths)
        .select("ordinal", "text", F.input_file_name().alias("file"))
        .join(F.broadcast(items), "file")
        .select("item", "ordinal", "text")
    )

    def score_group(table):
        import pyarrow as pa

        from .scoring import score_texts

        table = table.sort_by("ordinal")
        item = table.column("item")[0].as_py()
        texts = table.column("text").to_pylist()
        ordinals = table.column("ordinal")
        pieces = []
        for index in wanted[item]:
            scores = score_texts(plan, index, texts)
            pieces.append(
                pa.table(
                    {
                        "item": pa.array(np.full(len(texts), item, dtype=np.int64)),
                        "scorer": pa.array(np.full(len(texts), index, dtype=np.int32)),
                        "ordinal": ordinals,
                        "score": pa.array(scores, pa.float64()),
                    }
                )
            )
        return pa.concat_tables(pieces)

    result = docs.groupBy("item").applyInArrow(score_group, RESULT_SCHEMA).toArrow()
    by_item = result.sort_by(
        [("item", "ascending"), ("scorer", "ascending"), ("ordinal", "ascending")]
    )
    item_col = by_item.column("item").to_numpy()
    scorer_col = by_item.column("scorer").to_numpy()
    score_col = by_item.column("score").to_numpy()
    for item, (task, indices) in enumerate(work):
        for index in indices:  # a file without kept documents had no group: empty scores
            mine = (item_col == item) & (scorer_col == index)
            write_scores(plan.score_file(stage_dir, task, index), score_col[mine])
        progress.advance(1)
    return perf_counter() - start
