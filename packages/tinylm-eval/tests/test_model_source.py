import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from tinylm_eval.model_source import ModelSourceError, resolve_model


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_a_local_model_directory_is_used_as_is(tiny_model_dir):
    source = resolve_model(tiny_model_dir)
    assert source.name == tiny_model_dir and source.local_files_only


@pytest.mark.parametrize("name", ["runs/sample-cpu/final", "./final", "/nowhere/final", "~/m"])
def test_a_missing_directory_is_not_sent_to_the_hub(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(ModelSourceError, match=f"^{name}: no such directory; pass a local"):
        resolve_model(name)
    assert time.monotonic() - started < 1


def test_a_directory_without_a_model_or_a_file_is_refused(tmp_path):
    with pytest.raises(ModelSourceError, match="holds neither config.json nor adapter_config"):
        resolve_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match="is a file, not a model directory"):
        resolve_model(tmp_path / "model.safetensors")


def test_offline_a_hub_id_without_a_cached_copy_fails_at_once(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelSourceError, match=r"hub is off \(HF_HUB_OFFLINE\) with no cached"):
        resolve_model("Qwen/Qwen1.5-0.5B")
    assert time.monotonic() - started < 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _resolve_with_hub_at(endpoint: str, tmp_path, timeout: float):
    """resolve_model in a fresh process whose hub is `endpoint` (HF_ENDPOINT is read at import)."""
    code = (
        "import sys\n"
        "from tinylm_eval.model_source import ModelSourceError, resolve_model\n"
        "try:\n"
        f"    resolve_model('Qwen/Qwen1.5-0.5B', timeout={timeout})\n"
        "except ModelSourceError as error:\n"
        "    sys.exit(str(error))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    return done, time.monotonic() - started


def test_an_unreachable_hub_fails_fast(tmp_path):
    done, seconds = _resolve_with_hub_at(f"http://127.0.0.1:{_closed_port()}", tmp_path, 5)
    assert done.returncode == 1 and seconds < 10
    assert "hub could not be reached within 5 s (ConnectError)" in done.stderr


def test_a_hub_that_never_answers_times_out(tmp_path):
    """A server that accepts the connection and sends nothing: the short timeout ends the wait."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        done, seconds = _resolve_with_hub_at(endpoint, tmp_path, 0.5)
    finally:
        server.close()
    assert done.returncode == 1 and seconds < 10
    assert "within 0.5 s (ReadTimeout)" in done.stderr


def _cli(args, env):
    return subprocess.run(
        [sys.executable, "-c", "from tinylm_eval.cli import app; app()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        timeout=300,
    )


@pytest.mark.slow
def test_a_cached_hub_model_loads_offline(tiny_model_dir, tmp_path):
    """The real hub cache layout, HF_HUB_OFFLINE=1: the hub id is read from the cache."""
    snapshot = tmp_path / "hf" / "hub" / "models--tiny--qwen2" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    args = ["mmlu", "--model", "tiny/qwen2", "--data", "sample", "--subjects", "philosophy"]
    done = _cli(
        [*args, "--shots", "1", "--out", str(tmp_path / "out")],
        {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "results.json").is_file()


def test_the_cli_says_so_in_one_line_and_debug_shows_the_traceback(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = _cli(["mmlu", "--model", "tiny/qwen2", "--data", "sample"], env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: tiny/qwen2: no such local directory, and the hub is off (HF_HUB_OFFLINE) with no "
        "cached copy; pass a local model directory (a tinylm-train export holds config.json and "
        "model.safetensors, a LoRA adapter adapter_config.json)"
    ]
    done = _cli(["--debug", "mmlu", "--model", "tiny/qwen2", "--data", "sample"], env)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ModelSourceError" in done.stderr
