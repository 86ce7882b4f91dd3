"""Build workers encode through the tokenizer's thread pool, and never with one inherited dead.

A process forked after its parent ran the pool (with TOKENIZERS_PARALLELISM set, as a user may
have it) would wait forever for the pool's threads; each case runs in a fresh interpreter, with
a timeout, so the parent's state is the one set up here. Linux: threads are read from /proc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

_BUILD = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from tinylm_data.build import BuildOptions, run_build
    from tinylm_data.config import load_config_file, parse_config
    from tinylm_data.tokenizer import LoadedTokenizer

    config_path, out, parallel_over, warm = sys.argv[1:5]
    base = Path(config_path).parent
    config = parse_config(load_config_file(Path(config_path)))
    if warm == "1":  # start the pool in this process, with the variable set, before any fork
        os.environ["TOKENIZERS_PARALLELISM"] = "true"
        LoadedTokenizer(config.tokenizer, base).backend.encode_batch_fast(["warm up"] * 256)
    result = run_build(
        config, base, BuildOptions(out_root=Path(out), workers=2, parallel_over=parallel_over)
    )
    print(json.dumps([shard["sha256"] for shard in result.manifest["shards"]]))
    """
)


def _build(config, out, parallel_over: str, warm: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TOKENIZERS_PARALLELISM"}}
    result = subprocess.run(
        [sys.executable, "-c", _BUILD, str(config), str(out), parallel_over, "1" if warm else "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # a worker left with a dead pool hangs: this is what fails then
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_build_forked_after_the_pool_ran_finishes_with_the_same_shards(tiny_corpus, tmp_path):
    reference = _build(tiny_corpus, tmp_path / "cold", "files", warm=False)
    # each kind of pool: whole files per worker, and batches of one file spread over workers
    for parallel_over in ("files", "batches"):
        warm = _build(tiny_corpus, tmp_path / parallel_over, parallel_over, warm=True)
        assert warm == reference  # same token ids through the pool and on the serial path


_PROBE = textwrap.dedent(
    """
    import os, sys
    from tinylm_data.tokenizer import LoadedTokenizer, forking_encoders, use_thread_pool

    tok = LoadedTokenizer("builtin:sample").backend
    warm = sys.argv[1] == "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if warm else "false"  # pool started or not
    expected = [e.ids for e in tok.encode_batch(["a short text", "另一段文字"] * 256)]
    if not warm:
        del os.environ["TOKENIZERS_PARALLELISM"]
    with forking_encoders():
        pid = os.fork()
    if pid == 0:
        use_thread_pool(1, allowed=sys.argv[2] == "1", forked=True)
        ids = [e.ids for e in tok.encode_batch_fast(["a short text", "另一段文字"] * 256)]
        pooled = len(os.listdir("/proc/self/task")) > 1  # the pool's thread beside this one
        os._exit((0 if ids == expected else 8) + (1 if pooled else 0))
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), os.environ.get("TOKENIZERS_PARALLELISM"))
    """
)


@pytest.mark.parametrize(
    ("warm", "allowed", "pooled"), [(False, True, True), (True, True, False), (False, False, False)]
)
def test_a_forked_worker_uses_the_pool_only_when_it_is_safe_and_allowed(warm, allowed, pooled):
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, "1" if warm else "0", "1" if allowed else "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    code, parent_value = result.stdout.split()
    assert int(code) == (1 if pooled else 0)  # 8 and up: other token ids
    # the parent's own setting is back after the fork ("true" where it had set it)
    assert parent_value == ("true" if warm else "None")


def test_an_in_process_build_leaves_the_encoder_settings_as_it_found_them(tiny_corpus, tmp_path):
    script = _BUILD.replace("workers=2", "workers=1") + textwrap.dedent(
        """
        print(os.environ.get("TOKENIZERS_PARALLELISM"), os.environ.get("RAYON_NUM_THREADS"))
        """
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS"}
    }
    result = subprocess.run(
        [sys.executable, "-c", script, str(tiny_corpus), str(tmp_path), "auto", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "None None"
