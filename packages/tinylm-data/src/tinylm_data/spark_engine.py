"""The Spark engine: the same steps and configuration as the local engine, as Spark jobs.

* Stage 1 (`stages.STAGE_ONE`) runs one Spark task per stage-1 task (an input file, or a unit of
  a file larger than `split_bytes`: see `readers.units`), with the very code the local engine runs, writing the same per-task files into the work directory (on a cluster that
  directory must be on storage every executor and the driver share).
* Exact dedup is a Spark window over the 16-byte keys; near dedup is MinHash LSH with a distributed
  connected-components pass (`tinylm_data.dedup`).
* The assembly (packing and writing) is the build's own, on the driver: a single ordered pass over
  the task files, which is what makes the shards identical to the local engine's (same version
  id, same bytes). Use it as `run_build(..., engine=engine)` inside `with spark_engine() as engine`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .assembly import KeptFiles, Removal
from .config import BuildConfig
from .progress import Progress
from .stage_one import StageOneJob, Task
from .stages import Stage

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

    _quiet_python_warnings()
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the JVM is already up (PYSPARK_GATEWAY_PORT) with the submit's master.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or "local[*]")
        log4j = Path(__file__).with_name("assets") / "spark-log4j2.properties"
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j.as_uri()}"
        )
    session = (
        builder.config(
            "spark.sql.shuffle.partitions", os.environ.get("TINYLM_SPARK_PARTITIONS", "16")
        )
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("TINYLM_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.executorEnv.PYTHONWARNINGS", _PANDAS_WARNING)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel(os.environ.get("TINYLM_SPARK_LOG_LEVEL", "ERROR").upper())
    return session


# PySpark warns on every session and every pandas UDF that pandas 3 is "not yet fully
# supported"; the engine uses Arrow batches only, which the warning does not concern.
_PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def _quiet_python_warnings() -> None:
    import warnings

    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    # py4j logs "Closing down clientserver connection" at INFO when the session stops.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # Python workers of local mode inherit the driver's environment.
    previous = os.environ.get("PYTHONWARNINGS")
    if not previous or _PANDAS_WARNING not in previous:
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [previous, _PANDAS_WARNING]))


class SparkEngine:
    """Stage 1 as one Spark job (one Spark task per stage-1 task); dedup as Spark jobs (see `Engine`)."""

    def __init__(self, spark) -> None:
        self.spark = spark
        # Per stage-1 task of the last run: its file, Spark partition, executor host, seconds.
        self.stage_one_spark_tasks: list[dict] = []

    def run_tasks(self, tasks: list[Task], job: StageOneJob, progress: Progress) -> list[dict]:
        if not tasks:
            return []

        from .stage_one_worker import TokenizerThreads
        from .tokenizer import thread_pool_allowed

        threads = TokenizerThreads(1, thread_pool_allowed())  # the driver's setting

        def run_partition(items):
            import socket
            from time import perf_counter

            from pyspark import TaskContext

            # Spark runs one task per core already: no process pool inside an executor, and
            # one tokenizer thread.
            with job.runner(workers=1, threads=threads, in_worker=True) as runner:
                for (task,) in items:
                    start = perf_counter()
                    summary = runner.run(task)
                    where = {
                        "task": task.index,
                        "file": task.display_path,
                        "partition": TaskContext.get().partitionId(),
                        "host": socket.gethostname(),
                        "seconds": perf_counter() - start,
                    }
                    yield summary, where

        payload = [(t,) for t in tasks]
        rdd = self.spark.sparkContext.parallelize(payload, numSlices=len(payload))
        results = rdd.mapPartitions(run_partition).collect()
        self.stage_one_spark_tasks = [where for _, where in results]
        files = len({(t.source_index, t.display_path) for t in tasks})
        logger.info("stage 1: %d Spark tasks for %d input files", len(results), files)
        progress.advance(sum(t.size for t in tasks))
        return [summary for summary, _ in results]

    def _documents(self, kept: KeptFiles, column: str):
        """(doc, grp, column) of every kept document: doc is its global ordinal."""
        from pyspark.sql import functions as F

        files = self.spark.createDataFrame(
            [
                (Path(path).resolve().as_uri(), int(kept.offsets[i]), kept.groups[i])
                for i, path in enumerate(kept.paths)
            ],
            "file string, offset long, grp long",
        )
        paths = [str(p) for p, rows in zip(kept.paths, kept.rows, strict=True) if rows]
        return (
            self.spark.read.parquet(*paths)
            .select("ordinal", column, F.input_file_name().alias("file"))
            .join(F.broadcast(files), "file")
            .select((F.col("offset") + F.col("ordinal")).alias("doc"), "grp", column)
        )

    def exact_duplicates(self, kept: KeptFiles, config: BuildConfig) -> dict[int, Removal]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not any(kept.rows):
            return {}
        docs = self._documents(kept, "key")
        first = F.min("doc").over(Window.partitionBy("grp", "key"))
        dupes = docs.withColumn("first", first).where(F.col("doc") != F.col("first"))
        return {
            int(row["doc"]): Removal(Stage.EXACT_DEDUP, int(row["first"]))
            for row in dupes.select("doc", "first").toLocalIterator()
        }

    def near_duplicates(
        self,
        kept: KeptFiles,
        config: BuildConfig,
        removed: Mapping[int, Removal],
        work_dir: Path,
    ) -> dict[int, Removal]:
        from .dedup import near_dedup_spark_signatures

        if not any(kept.rows):
            return {}
        near = config.dedup.near
        signatures = self._documents(kept, "signature")
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
            int(doc): Removal(Stage.NEAR_DEDUP, int(kept_doc), int(cluster))
            for doc, cluster, kept_doc in result.removed()
        }

    def quality_scores(self, work, plan, stage_dir: Path, progress: Progress) -> float:
        """The quality scores as a grouped Arrow UDF (`quality.spark`)."""
        from .quality.spark import spark_quality_scores

        return spark_quality_scores(self.spark, work, plan, stage_dir, progress)


@contextmanager
def spark_engine(master: str | None = None) -> Iterator[SparkEngine]:
    """A `SparkEngine` on a new session (local[*] unless `master` is given), stopped after."""
    spark = spark_session(master)
    try:
        yield SparkEngine(spark)
    finally:
        spark.stop()
