"""The chat-data builder resumes per input file after a real SIGKILL, gives the same bytes with 1
and 2 encoding workers, and does not mix the work of another config into a build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TOPICS = ("apples", "rivers", "stars")


def _inputs(tmp_path: Path) -> Path:
    """Three input files of one SFT source and one preference source, with a cross-file
    duplicate (the second file repeats a record of the first)."""
    first: dict[str, dict] = {}
    for n, topic in enumerate(TOPICS):
        sft = [
            {"instruction": f"Tell me fact {k} about {topic}.", "output": f"Fact {k}: {topic}."}
            for k in range(12)
        ]
        pref = [
            {
                "conversations": [{"from": "human", "value": f"Say {k} about {topic}."}],
                "chosen": f"{k} {topic}. Hope this helps!",
                "rejected": f"{k} {topic}.",
            }
            for k in range(12)
        ]
        if n == 0:
            first = {"sft": sft[0], "pref": pref[0]}
        if n == 1:
            sft.append(dict(first["sft"]))
            pref.append(dict(first["pref"]))
        (tmp_path / f"sft-{n}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
        (tmp_path / f"pref-{n}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pref))
    (tmp_path / "sft.yaml").write_text(
        "name: s\nmax_length: 64\nrows_per_shard: 4\naugment: {instruction_rate: 0.5}\n"
        "sources:\n"
        "  - {name: a, kind: alpaca, paths: [sft-0.jsonl, sft-1.jsonl, sft-2.jsonl], "
        "heldout_share: 0.2}\n"
    )
    (tmp_path / "pref.yaml").write_text(
        "name: p\nmax_length: 64\nrows_per_shard: 4\nsources:\n"
        "  - {name: d, kind: dpo_zh, paths: [pref-0.jsonl, pref-1.jsonl, pref-2.jsonl], "
        "heldout_share: 0.2}\n"
    )
    return tmp_path


def _build(command: str, config: Path, out: Path, *args: str, crash: str | None = None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TINYLM_DATA_CRASH_AT", None)
    if crash:
        env["TINYLM_DATA_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "tinylm_data", command, "build", "--config", str(config)]
        + ["--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _published(out: Path, name: str) -> tuple[dict, dict[str, bytes]]:
    directory = out / name / (out / name / "LATEST").read_text().strip()
    manifest = json.loads((directory / "manifest.json").read_text())
    entries = [*manifest["shards"], *manifest["splits"]["validation"]["shards"]]
    files = {e["path"]: (directory / e["path"]).read_bytes() for e in entries}
    files["rejects"] = (directory / "rejects" / "rejects-00000.parquet").read_bytes()
    return manifest, files


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The inputs and configs, written once; every build reads them and writes elsewhere."""
    return _inputs(tmp_path_factory.mktemp("chat-inputs"))


@pytest.fixture(scope="module")
def whole(inputs, tmp_path_factory):
    """`whole(command, name)`: what one uninterrupted single-worker build of that config
    publishes, built once per command and compared with every killed, resumed or 2-worker one."""
    built: dict[str, tuple[dict, dict[str, bytes]]] = {}

    def published_whole(command: str, name: str) -> tuple[dict, dict[str, bytes]]:
        if command not in built:
            out = tmp_path_factory.mktemp(f"whole-{command}")
            done = _build(command, inputs / f"{command}.yaml", out, "--workers", "1")
            assert done.returncode == 0, done.stderr[-3000:]
            built[command] = _published(out, name)
        return built[command]

    return published_whole


@pytest.mark.slow
@pytest.mark.parametrize(("command", "name"), [("sft", "s"), ("pref", "p")])
@pytest.mark.parametrize("point", ["chat_read", "chat_encode"])
def test_a_killed_build_resumes_per_file_and_ends_with_the_same_bytes(
    inputs, whole, tmp_path, command, name, point
):
    config = inputs / f"{command}.yaml"
    out = tmp_path / "killed"
    killed = _build(command, config, out, "--workers", "1", crash=f"{point}:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (work,) = (out / name).glob(".work-*")
    marker = work / f"{point.removeprefix('chat_')}-00000.json"
    assert marker.is_file() and not (out / name / "LATEST").exists()

    resumed = _build(command, config, out, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    read, encoded = (3, 1) if point == "chat_encode" else (1, 0)
    said = " ".join((resumed.stdout + resumed.stderr).split())
    assert f"resumed an interrupted build: {read} input file(s) already read, {encoded}" in said
    assert not work.exists(), "the work directory goes once the build is published"
    manifest, files = _published(out, name)
    expected_manifest, expected = whole(command, name)
    assert manifest["version"] == expected_manifest["version"]
    assert manifest["shards"] == expected_manifest["shards"]  # content ids: sha256 per shard
    assert files == expected
    assert (
        manifest["counts" if command == "sft" else "sources"]
        == expected_manifest["counts" if command == "sft" else "sources"]
    )
    total = json.loads((out / name / manifest["version"] / "stats.json").read_text())["total"]
    assert total["duplicates"] == 1, "the cross-file duplicate is found across the resume"


@pytest.mark.slow
def test_a_resume_reuses_the_finished_files_unchanged(inputs, tmp_path):
    from tinylm_data.config import load_config_file, parse_model
    from tinylm_data.sft import SftConfig
    from tinylm_data.sft.build import SftKind
    from tinylm_data.sft.builder import run_chat_build

    out = tmp_path / "out"
    killed = _build("sft", inputs / "sft.yaml", out, "--workers", "1", crash="chat_encode:2")
    assert killed.returncode == -signal.SIGKILL
    config = parse_model(SftConfig, load_config_file(inputs / "sft.yaml"))
    seen: list[str] = []
    original = SftKind.read

    def counting_read(self, source, path, display):
        seen.append(display)
        return original(self, source, path, display)

    SftKind.read = counting_read
    try:
        result = run_chat_build(SftKind(config, inputs), inputs, out, workers=1)
    finally:
        SftKind.read = original
    assert result.resumed == {"read": 3, "encoded": 2}
    assert seen == [], "no finished input file is read again"
    assert result.stats["total"]["duplicates"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("command,name", [("sft", "s"), ("pref", "p")])
def test_one_and_two_workers_give_the_same_bytes(inputs, whole, tmp_path, command, name):
    result = _build(command, inputs / f"{command}.yaml", tmp_path, "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = whole(command, name), _published(tmp_path, name)
    assert one[0]["shards"] == two[0]["shards"]
    assert one[1] == two[1]


@pytest.mark.slow
def test_a_config_change_after_a_kill_starts_over_and_says_so(inputs, tmp_path):
    out = tmp_path / "out"
    killed = _build("sft", inputs / "sft.yaml", out, crash="chat_encode:1")
    assert killed.returncode == -signal.SIGKILL
    (old,) = (out / "s").glob(".work-*")
    changed = _build("sft", inputs / "sft.yaml", out, "--set", "seed=7")
    assert changed.returncode == 0, changed.stderr[-3000:]
    said = " ".join((changed.stdout + changed.stderr).split())
    assert f"changed since an interrupted build left {old.name}" in said
    assert "resumed an interrupted build" not in said
    assert not old.exists()
    fresh = _build("sft", inputs / "sft.yaml", tmp_path / "fresh", "--set", "seed=7")
    assert fresh.returncode == 0
    assert _published(out, "s")[1] == _published(tmp_path / "fresh", "s")[1]
