"""The Spark engine: the same steps and configuration as the local engine, as Spark jobs.

* Stage 1 (read, clean, filter, key, tokenize, sign) runs one Spark task per input file, with the
  very code the local engine runs, writing the same per-task files into the work directory (on a
  cluster that directory must be on storage every executor and the driver share).
* Exact dedup is a Spark window over the 16-byte keys; near dedup is MinHash LSH with a distributed
  connected-components pass (`tinylm_data.dedup`).
* Packing and writing stay on the driver: a single ordered pass over the task files, which is what
  makes the shards identical to the local engine's (same version id, same bytes).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .assemble import Assembler, Removal
from .build import BuildOptions, BuildResult, Progress, run_build
from .config import BuildConfig

logger = logging.getLogger(__name__)

MIN_JAVA = 17


class SparkUnavailable(RuntimeError):
    """Spark cannot start here; the message says what is missing."""


def java_major_version() -> int | None:
    java = (
        shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin"))
        if os.environ.get("JAVA_HOME")
        else shutil.which("java")
    )
    if java is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_spark_requirements() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable(
            "the Spark engine needs PySpark: install tinylm-data[spark] (pip install 'tinylm-data[spark]')"
        ) from None
    major = java_major_version()
    if major is None:
        raise SparkUnavailable(
            f"the Spark engine needs Java {MIN_JAVA} or newer, and no `java` was found "
            "(install a JDK and put it on PATH or set JAVA_HOME); the local engine needs no Java"
        )
    if major < MIN_JAVA:
        raise SparkUnavailable(
            f"the Spark engine needs Java {MIN_JAVA} or newer; found Java {major} "
            "(set JAVA_HOME to a newer JDK)"
        )


def spark_session(master: str | None = None, app_name: str = "tinylm-data"):
    """A Spark session; local[*] unless a master URL is given (spark-submit sets its own)."""
    check_spark_requirements()
    # Executors outside `uv run` must use this interpreter, which has tinylm-data installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the JVM is already up (PYSPARK_GATEWAY_PORT) with the submit's master.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or "local[*]")
    return (
        builder.config(
            "spark.sql.shuffle.partitions", os.environ.get("TINYLM_SPARK_PARTITIONS", "16")
        )
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("TINYLM_SPARK_DRIVER_MEMORY", "4g"))
        .getOrCreate()
    )


class SparkAssembler(Assembler):
    """Assembly whose dedup runs on Spark; packing is inherited unchanged."""

    def __init__(self, spark, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spark = spark

    def _file_table(self):
        rows = [
            (
                Path(path).resolve().as_uri(),
                i,
                int(self.task_offset[i]),
                t.source_index if self.config.dedup.scope == "source" else 0,
            )
            for i, (path, t) in enumerate(zip(self.kept_files, self.tasks, strict=True))
        ]
        return self.spark.createDataFrame(rows, "file string, task int, offset long, grp long")

    def find_removals(self) -> dict[int, Removal]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        removals: dict[int, Removal] = {}
        paths = [str(p) for p, rows in zip(self.kept_files, self.rows, strict=True) if rows]
        if not paths:
            return removals
        docs = (
            self.spark.read.parquet(*paths)
            .select("ordinal", "key", F.input_file_name().alias("file"))
            .join(F.broadcast(self._file_table()), "file")
            .select((F.col("offset") + F.col("ordinal")).alias("doc"), "key", "grp")
        )
        if self.config.dedup.exact:
            self.on_stage("exact dedup (spark)", None)
            first = F.min("doc").over(Window.partitionBy("grp", "key"))
            dupes = docs.withColumn("first", first).where(F.col("doc") != F.col("first"))
            for row in dupes.select("doc", "first").toLocalIterator():
                removals[int(row["doc"])] = Removal("exact_dedup", int(row["first"]))
        if self.config.dedup.near.enabled:
            self.on_stage("near dedup (spark)", None)
            removals.update(self._near_duplicates_spark(removals))
        return removals

    def _near_duplicates_spark(self, removed: dict[int, Removal]) -> dict[int, Removal]:
        from pyspark.sql import functions as F

        from .dedup import near_dedup_spark_signatures

        near = self.config.dedup.near
        paths = [str(p) for p, rows in zip(self.kept_files, self.rows, strict=True) if rows]
        signatures = (
            self.spark.read.parquet(*paths)
            .select("ordinal", "signature", F.input_file_name().alias("file"))
            .join(F.broadcast(self._file_table()), "file")
            .select((F.col("offset") + F.col("ordinal")).alias("doc"), "grp", "signature")
        )
        if removed:
            gone = self.spark.createDataFrame([(d,) for d in removed], "doc long")
            signatures = signatures.join(gone, "doc", "left_anti")
        result = near_dedup_spark_signatures(
            self.spark,
            signatures,
            threshold=near.threshold,
            num_perm=near.num_perm,
            verify=near.verify,
            slack=near.slack,
        )
        return {
            int(doc): Removal("near_dedup", int(kept), int(cluster))
            for doc, cluster, kept in result.removed()
        }


def run_build_spark(
    config: BuildConfig,
    base: Path,
    options: BuildOptions,
    progress: Progress | None = None,
    *,
    master: str | None = None,
) -> BuildResult:
    spark = spark_session(master)
    try:
        return run_build(
            config,
            base,
            options,
            progress,
            stage1=_spark_stage1(spark),
            assembler_factory=lambda *a, **k: SparkAssembler(spark, *a, **k),
        )
    finally:
        spark.stop()


def _spark_stage1(spark):
    """Runs the given tasks as one Spark job, one task per input file."""

    def run(tasks, setup, work_dir, config, options, reader_factory):
        if not tasks:
            return []
        payload = [(t,) for t in tasks]

        def run_partition(items):
            from .build import make_task_runner

            # Spark runs one task per core already: no process pool inside an executor.
            runner = make_task_runner(config, setup, work_dir, options, reader_factory, workers=1)
            with runner:
                for (task,) in items:
                    yield runner.run(task)

        rdd = spark.sparkContext.parallelize(payload, numSlices=len(payload))
        return rdd.mapPartitions(run_partition).collect()

    return run
