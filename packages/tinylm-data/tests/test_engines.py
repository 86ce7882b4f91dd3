"""The local engine: a worker that cannot start stops the build with its error, in every mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.engines import LocalEngine
from tinylm_data.stage_one_worker import WorkerStartError


@pytest.mark.parametrize(
    ("workers", "parallel_over"), [("1", "auto"), ("2", "files"), ("2", "batches"), ("2", "auto")]
)
def test_a_worker_that_fails_to_start_stops_the_build_with_its_error(
    tiny_corpus, tmp_path, workers, parallel_over
):
    result = subprocess.run(
        [sys.executable, "-m", "tinylm_data", "build", "--config", str(tiny_corpus)]
        + ["--out", str(tmp_path), "--workers", workers, "--parallel-over", parallel_over],
        env={**os.environ, "TINYLM_DATA_FAIL_AT": "worker_start"},
        capture_output=True,
        text=True,
        timeout=180,  # a pool that restarts failing workers would hang here
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "a build worker could not start: InjectedFault: injected fault at worker_start" in (
        " ".join(result.stderr.split())
    ), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tiny" / "LATEST").exists()


def test_worker_start_errors_reach_library_callers(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_DATA_FAIL_AT", "worker_start")
    config = parse_config(load_config_file(tiny_corpus))
    with pytest.raises(WorkerStartError, match="injected fault at worker_start"):
        run_build(
            config,
            tiny_corpus.parent,
            BuildOptions(out_root=tmp_path),
            engine=LocalEngine(workers=2, parallel_over="batches"),
        )


def test_unknown_parallel_over_is_refused():
    with pytest.raises(ValueError, match="auto, files or batches"):
        LocalEngine(parallel_over="rows")
