"""Loading tokenizers: fast path without transformers, cached conversion of slow-file layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinylm_data.tokenizer import LoadedTokenizer, builtin_tokenizer_dir

TEXT = "Hello world, 你好，世界。 <|endoftext|> tail"


def _slow_layout(target: Path) -> Path:
    """The sample tokenizer as GPT-2 style vocab.json + merges.txt (no tokenizer.json)."""
    model = json.loads((builtin_tokenizer_dir("sample") / "tokenizer.json").read_text())["model"]
    target.mkdir()
    (target / "vocab.json").write_text(json.dumps(model["vocab"]), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (target / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    (target / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GPT2Tokenizer",
                "eos_token": "<|endoftext|>",
                "bos_token": None,
                "unk_token": None,
                "pad_token": None,
                "add_prefix_space": False,
            }
        )
    )
    return target


def _load_in_subprocess(spec: str, cache: Path) -> dict:
    code = (
        "import json, sys\n"
        "from tinylm_data.tokenizer import LoadedTokenizer\n"
        f"t = LoadedTokenizer({spec!r})\n"
        "print(json.dumps({'info': t.info.as_dict(), 'ids': t.backend.encode("
        f"{TEXT!r}, add_special_tokens=False).ids, "
        "'transformers': 'transformers' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"TINYLM_CACHE": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_tokenizer_json_loads_without_transformers(tmp_path):
    loaded = _load_in_subprocess("builtin:sample", tmp_path)
    assert not loaded["transformers"]
    assert loaded["info"]["eos_id"] == 0 and loaded["info"]["vocab_size"] == 8000


@pytest.mark.slow  # converts the Qwen vocab and merges
def test_slow_files_convert_once_then_load_from_the_cache(tmp_path):
    slow = _slow_layout(tmp_path / "slow")
    first = _load_in_subprocess(str(slow), tmp_path / "cache")
    assert first["transformers"]
    assert len(list((tmp_path / "cache" / "tokenizers").iterdir())) == 1
    second = _load_in_subprocess(str(slow), tmp_path / "cache")
    assert not second["transformers"]
    assert second["info"] == first["info"] and second["ids"] == first["ids"]
    # the conversion agrees with the tokenizer the files came from
    sample = LoadedTokenizer("builtin:sample")
    assert first["ids"] == sample.backend.encode(TEXT, add_special_tokens=False).ids
    assert first["info"]["eos_id"] == sample.info.eos_id
    # a changed file is a different tokenizer: converted again, not served from the cache
    (slow / "tokenizer_config.json").write_text(
        (slow / "tokenizer_config.json")
        .read_text()
        .replace('"pad_token": null', '"pad_token": "<|endoftext|>"')
    )
    _load_in_subprocess(str(slow), tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "tokenizers").iterdir())) == 2


def test_saved_tokenizer_loads_with_transformers_and_encodes_alike(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = LoadedTokenizer("builtin:sample")
    tokenizer.save(tmp_path / "saved")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert (
        hf.encode(TEXT, add_special_tokens=False)
        == tokenizer.backend.encode(TEXT, add_special_tokens=False).ids
    )
    assert hf.eos_token_id == tokenizer.info.eos_id
    assert LoadedTokenizer(str(tmp_path / "saved")).info.sha256 == tokenizer.info.sha256


def test_a_tokenizer_without_eos_is_refused(tmp_path):
    target = tmp_path / "no-eos"
    target.mkdir()
    (target / "tokenizer.json").write_bytes(
        (builtin_tokenizer_dir("sample") / "tokenizer.json").read_bytes()
    )
    (target / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ValueError, match="no EOS token"):
        LoadedTokenizer(str(target))


@pytest.mark.slow  # loads the Qwen files through transformers
@pytest.mark.shared
def test_qwen_slow_files_give_the_transformers_identity(shared_data, tmp_path):
    from transformers import AutoTokenizer

    source = shared_data / "qwen1.5-tokenizer"
    first = _load_in_subprocess(str(source), tmp_path)
    cached = _load_in_subprocess(str(source), tmp_path)
    assert not cached["transformers"] and cached == {**first, "transformers": False}
    hf = AutoTokenizer.from_pretrained(str(source))
    assert first["info"]["vocab_size"] == len(hf) == 151646
    assert first["info"]["eos_id"] == hf.eos_token_id == 151643
    assert first["ids"] == hf.encode(TEXT, add_special_tokens=False)


@pytest.mark.parametrize("spec", ["./no-such-dir", "no/such/dir", "~/no-such-tokenizer", "a/../b"])
def test_a_missing_directory_is_reported_as_missing_not_as_a_hub_id(tmp_path, spec):
    from tinylm_data.tokenizer import TokenizerUnavailable, resolve_tokenizer_source

    with pytest.raises(TokenizerUnavailable, match=r"tokenizer directory .* does not exist"):
        resolve_tokenizer_source(spec, tmp_path)


def test_a_directory_beside_the_config_wins_over_a_hub_id(tmp_path):
    from tinylm_data.tokenizer import resolve_tokenizer_source

    (tmp_path / "Qwen" / "Qwen1.5-0.5B").mkdir(parents=True)
    assert resolve_tokenizer_source("Qwen/Qwen1.5-0.5B", tmp_path) == str(
        tmp_path / "Qwen" / "Qwen1.5-0.5B"
    )
    assert resolve_tokenizer_source("Qwen/Qwen1.5-0.5B", tmp_path / "elsewhere") == (
        "Qwen/Qwen1.5-0.5B"
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HF_HUB_OFFLINE": "1"}, "not in the local hub cache while HF_HUB_OFFLINE is set"),
        ({"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}, "unreachable"),
    ],
)
def test_an_unreachable_hub_fails_the_build_at_once_in_one_line(
    tiny_corpus, tmp_path, env, message
):
    import os
    import time

    root = tiny_corpus.parent
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tinylm_data", "build", "--source", "jsonl"]
        + ["--input", str(root / "en" / "part-0.jsonl.gz"), "--out", str(tmp_path / "out")],
        env={**os.environ, "HF_HOME": str(tmp_path / "hf"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert time.monotonic() - started < 30
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "'Qwen/Qwen1.5-0.5B' is not a local directory" in errors[0]
    assert message in errors[0] and "--tokenizer DIR" in errors[0]
    assert not (tmp_path / "out" / "jsonl").exists(), "nothing was built"


def test_a_missing_tokenizer_directory_fails_the_build_with_its_path(tiny_corpus, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinylm_data", "build", "--config", str(tiny_corpus)]
        + ["--tokenizer", "./missing-tokenizer", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "tokenizer directory './missing-tokenizer' does not exist" in result.stderr
    assert "Repo id" not in result.stderr
