"""`--out` as an fsspec URL: the build works in a local root, then publishes the version to the URL
(memory:// in-process, local:// a directory reached through fsspec), the manifest and LATEST last."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import fsspec
import pytest

from tinylm_data.build import BuildOptions, run_build
from tinylm_data.config import load_config_file, parse_config
from tinylm_data.faults import InjectedFault
from tinylm_data.publish import RemoteRoot


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/", recursive=True)


def _build(config_path: Path, work: Path, url: str | None, *, keep_work: bool = False):
    remote = RemoteRoot.of(url) if url else None
    if remote is not None:
        remote.check_writable(load_config_file(config_path)["name"])
    options = BuildOptions(out_root=work, workers=1, keep_work=keep_work, publish_to=remote)
    return run_build(parse_config(load_config_file(config_path)), config_path.parent, options)


def _local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _url_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {p[len(root.rstrip("/")) + 1 :]: fs.cat_file(p) for p in fs.find(root)}


def _without_timings(stats: bytes) -> dict:
    data = json.loads(stats)
    data.pop("seconds")
    return data


def test_a_url_out_holds_the_same_files_and_bytes_as_a_local_build(tiny_corpus, tmp_path, memory):
    plain = _build(tiny_corpus, tmp_path / "plain", None)
    published = _build(tiny_corpus, tmp_path / "work", "memory://datasets", keep_work=True)
    version = published.manifest["version"]
    assert version == plain.manifest["version"]
    assert published.published == f"memory://datasets/tiny/{version}"
    assert plain.published is None and not list(tmp_path.glob("plain/tiny/*.tmp"))

    at_url = _url_files("memory://datasets/tiny")
    assert at_url.pop("LATEST") == f"{version}\n".encode()
    # what arrived is the local copy, byte for byte
    assert at_url == {f"{version}/{k}": v for k, v in _local_files(published.out_dir).items()}
    # and the same files as a plain local build, the same bytes but for stats.json's timings
    local = _local_files(plain.out_dir)
    assert sorted(at_url) == sorted(f"{version}/{k}" for k in local)
    stats = f"{version}/stats.json"
    assert _without_timings(at_url.pop(stats)) == _without_timings(local.pop("stats.json"))
    assert at_url == {f"{version}/{k}": v for k, v in local.items()}
    assert any(k.startswith(f"{version}/shards/") for k in at_url)


def test_a_published_version_leaves_no_local_copy_and_a_rerun_does_nothing(
    tiny_corpus, tmp_path, memory
):
    work = tmp_path / "work"
    first = _build(tiny_corpus, work, "memory://datasets/")
    assert not first.reused and not first.out_dir.exists()
    assert not (work / "tiny" / "LATEST").exists()
    assert not list((work / "tiny").glob(".work-*"))
    # stage-1 results stay in the work root, as they do under a local --out
    assert list((work / "tiny" / ".stage1").glob("*.kept.parquet"))

    fresh = tmp_path / "fresh-work"
    again = _build(tiny_corpus, fresh, "memory://datasets")
    assert again.reused and again.published == first.published
    assert again.manifest == first.manifest and again.stats == first.stats
    assert not (fresh / "tiny" / ".stage1").exists()  # nothing was built


def test_an_interrupted_publish_resumes_from_the_local_copy(tiny_corpus, tmp_path, monkeypatch):
    url = (tmp_path / "bucket").as_uri().replace("file://", "local://", 1)
    work = tmp_path / "work"
    monkeypatch.setenv("TINYLM_DATA_FAIL_AT", "publish")  # after the files, before the manifest
    with pytest.raises(InjectedFault):
        _build(tiny_corpus, work, url)
    monkeypatch.delenv("TINYLM_DATA_FAIL_AT")
    dataset = tmp_path / "bucket" / "tiny"
    (version_dir,) = [p for p in dataset.iterdir() if p.is_dir()]
    version = version_dir.name
    assert not (version_dir / "manifest.json").exists() and not (dataset / "LATEST").exists()
    assert (work / "tiny" / version / "manifest.json").is_file()  # the complete local copy
    # an upload cut off midway: one shard half-written, one missing, one file left from elsewhere
    shards = sorted((version_dir / "shards").glob("*.parquet"))
    shards[0].write_bytes(shards[0].read_bytes()[:100])
    (version_dir / "stats.json").unlink()
    (version_dir / "stray.txt").write_text("not part of the version")
    untouched = version_dir / "tokenizer" / "tokenizer.json"
    before = untouched.stat().st_mtime_ns

    resumed = _build(tiny_corpus, work, url)
    assert resumed.reused and resumed.published == f"{url}/tiny/{version}"
    assert untouched.stat().st_mtime_ns == before  # complete files are not sent again
    assert not (version_dir / "stray.txt").exists()
    assert (dataset / "LATEST").read_text() == f"{version}\n"
    assert resumed.manifest == json.loads((version_dir / "manifest.json").read_text())
    rebuilt = _build(tiny_corpus, tmp_path / "plain", None)
    arrived = _local_files(version_dir)
    local = _local_files(rebuilt.out_dir)
    assert _without_timings(arrived.pop("stats.json")) == _without_timings(local.pop("stats.json"))
    assert arrived == local
    # the manifest after every other file, LATEST after the manifest
    others = [p.stat().st_mtime_ns for p in version_dir.rglob("*") if p.is_file()]
    manifest_at = (version_dir / "manifest.json").stat().st_mtime_ns
    assert max(others) == manifest_at <= (dataset / "LATEST").stat().st_mtime_ns
    assert not (work / "tiny" / version).exists()


def _cli(*args: str):
    from typer.testing import CliRunner

    from tinylm_data.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_a_url_out_without_its_filesystem_package_stops_before_any_work(tmp_path):
    work = tmp_path / "work"
    result = _cli(
        "build", "--source", "sample", "--out", "s3://bucket/datasets", "--work-dir", str(work)
    )
    assert result.exit_code == 2, result.output
    assert "--out 's3://bucket/datasets' needs s3fs installed" in result.output
    assert not work.exists()


def test_an_unwritable_url_or_a_work_dir_without_a_url_is_a_config_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    blocked = f"local://{tmp_path}/a-file/datasets"
    result = _cli(
        "build", "--source", "sample", "--out", blocked, "--work-dir", str(tmp_path / "w")
    )
    assert result.exit_code == 2, result.output
    assert f"--out '{blocked}' is not writable" in result.output
    assert not (tmp_path / "w").exists()
    result = _cli(
        "build", "--source", "sample", "--out", str(tmp_path / "o"), "--work-dir", str(tmp_path)
    )
    assert result.exit_code == 2 and "--work-dir goes with a URL --out" in result.output
    assert not (tmp_path / "o").exists()


def test_the_cli_publishes_like_a_local_build(tiny_corpus, tmp_path):
    url = f"local://{tmp_path}/bucket"
    work = tmp_path / "work"
    args = ["build", "--config", str(tiny_corpus), "--workers", "1", "--out"]
    result = _cli(*args, url, "--work-dir", str(work))
    assert result.exit_code == 0, result.output
    dataset = tmp_path / "bucket" / "tiny"
    version = (dataset / "LATEST").read_text().strip()
    assert f"output: {url}/tiny/{version}" in " ".join(result.output.split())
    assert not (work / "tiny" / version).exists()
    assert _cli(*args, str(tmp_path / "plain")).exit_code == 0
    arrived = _local_files(dataset / version)
    local = _local_files(tmp_path / "plain" / "tiny" / version)
    assert _without_timings(arrived.pop("stats.json")) == _without_timings(local.pop("stats.json"))
    assert arrived == local
    again = _cli(*args, url, "--work-dir", str(tmp_path / "other-work"))
    assert again.exit_code == 0 and "(already built)" in again.output


def test_sft_build_publishes_through_the_same_path(tmp_path, memory):
    from tinylm_data.cli_sft import sample_config_path
    from tinylm_data.config import parse_model
    from tinylm_data.sft import SftConfig, run_sft_build

    path = sample_config_path()
    config = parse_model(SftConfig, load_config_file(path))
    remote = RemoteRoot.of("memory://chat")
    result = run_sft_build(config, path.parent, tmp_path / "work", publish_to=remote)
    version = result.manifest["version"]
    assert result.published == f"memory://chat/{config.name}/{version}"
    at_url = _url_files(f"memory://chat/{config.name}")
    assert at_url.pop("LATEST") == f"{version}\n".encode()
    assert json.loads(at_url[f"{version}/manifest.json"]) == result.manifest
    assert not (tmp_path / "work" / config.name / version).exists()
    again = run_sft_build(config, path.parent, tmp_path / "other", publish_to=remote)
    assert again.reused and again.manifest == result.manifest


@pytest.mark.parametrize(
    "args",
    [
        ["tokenizer", "train", "--source", "sample"],
        ["quality", "train", "--positive", "a.txt", "--negative", "b.txt"],
    ],
)
def test_commands_that_write_a_local_directory_refuse_a_url_out(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli(*args, "--out", "s3://bucket/models")
    assert result.exit_code == 2, result.output
    assert "--out 's3://bucket/models': a local directory only" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_rag_index_publishes_through_the_same_path(tmp_path, memory):
    from tinylm_data.cli_rag import sample_config_path
    from tinylm_data.config import parse_model
    from tinylm_data.rag.build import run_rag_index
    from tinylm_data.rag.config import RagIndexConfig

    path = sample_config_path()
    config = parse_model(RagIndexConfig, load_config_file(path))
    remote = RemoteRoot.of("memory://indexes")
    result = run_rag_index(config, path.parent, tmp_path / "work", publish_to=remote)
    version = result.manifest.version
    assert result.published == f"memory://indexes/{config.name}/{version}"
    at_url = _url_files(f"memory://indexes/{config.name}")
    assert at_url.pop("LATEST") == f"{version}\n".encode()
    assert {f"{version}/manifest.json", f"{version}/stats.json"} <= set(at_url)
    assert json.loads(at_url[f"{version}/stats.json"]) == result.stats
    assert not (tmp_path / "work" / config.name / version).exists()


@pytest.mark.slow
def test_a_build_killed_during_the_upload_finishes_it_without_rebuilding(tiny_corpus, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    url = f"local://{tmp_path}/bucket"
    command = [sys.executable, "-m", "tinylm_data", "build", "--config", str(tiny_corpus)]
    command += ["--workers", "1", "--out", url, "--work-dir", str(tmp_path / "work")]
    killed = subprocess.run(
        command,
        env={**os.environ, "TINYLM_DATA_CRASH_AT": "publish:1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
    dataset = tmp_path / "bucket" / "tiny"
    assert not (dataset / "LATEST").exists() and not list(dataset.glob("*/manifest.json"))
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "is already built; publishing it" in " ".join(resumed.stderr.split())
    version = (dataset / "LATEST").read_text().strip()
    assert (dataset / version / "manifest.json").is_file()
    assert not (tmp_path / "work" / "tiny" / version).exists()
    assert not list((tmp_path / "work" / "tiny").glob(".work-*"))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_on_a_local_master_publishes_from_the_default_work_root(
    tiny_corpus, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = f"local://{tmp_path}/bucket"
    result = _cli(
        "build", "--config", str(tiny_corpus), "--engine", "spark", "--spark-master", "local[2]",
        "--out", url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache" / "tinylm-data" / "work" / "tiny" / ".stage1").is_dir()
    plain = _build(tiny_corpus, tmp_path / "plain", None)
    version = plain.manifest["version"]
    assert (tmp_path / "bucket" / "tiny" / "LATEST").read_text() == f"{version}\n"
    arrived = _local_files(tmp_path / "bucket" / "tiny" / version)
    local = _local_files(plain.out_dir)
    assert sorted(arrived) == sorted(local)
    del arrived["stats.json"], local["stats.json"]
    assert arrived == local
