from __future__ import annotations

import pytest

from tinylm_data.config import ConfigError, apply_overrides, parse_config, parse_override

BASE = {"name": "demo", "sources": [{"name": "web", "kind": "jsonl", "paths": ["a.jsonl"]}]}


def test_defaults_are_the_reference_setup():
    cfg = parse_config(BASE)
    assert cfg.block_size == 1024 and cfg.pack_mode == "concat"
    assert cfg.dedup.exact and not cfg.dedup.near.enabled
    assert cfg.dedup.near.threshold == 0.8 and cfg.dedup.near.num_perm == 128


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"pack_mode": "greedy"}, "pack_mode"),
        ({"block_size": 1}, "block_size"),
        ({"sources": []}, "sources"),
        ({"unknown": 1}, "unknown"),
        ({"name": "a/b"}, "name"),
        ({"sources": [{"name": "x", "kind": "csv", "paths": ["f"]}]}, "kind"),
        ({"sources": [{"name": "x", "kind": "txt", "paths": ["f"], "weight": -1}]}, "weight"),
        ({"sources": [{"name": "x", "kind": "txt", "paths": ["f"]}] * 2}, "unique"),
    ],
)
def test_invalid_configs_name_the_field(patch, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, **patch})


def test_overrides_reach_nested_fields_and_sources_by_name():
    data = apply_overrides(BASE, {"dedup.near.enabled": True, "sources.web.weight": 2.5})
    cfg = parse_config(data)
    assert cfg.dedup.near.enabled and cfg.sources[0].weight == 2.5
    assert BASE["sources"][0].get("weight") is None, "overrides never mutate their input"
    with pytest.raises(ConfigError, match="no entry named"):
        apply_overrides(BASE, {"sources.nope.weight": 1})


def test_parse_override_reads_yaml_values():
    assert parse_override("block_size=2048") == ("block_size", 2048)
    assert parse_override("dedup.exact=false") == ("dedup.exact", False)
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")


def test_filter_and_clean_rule_mistakes_are_config_errors():
    with pytest.raises(ConfigError, match=r"filters\.min_en_word: Extra inputs"):
        parse_config({**BASE, "filters": {"min_en_word": 20}})
    with pytest.raises(ConfigError, match=r"filters\.max_chars: .*greater than 0"):
        parse_config({**BASE, "filters": {"max_chars": 0}})
    bad_rule = {**BASE, "sources": [{**BASE["sources"][0], "clean": ["html", "htm"]}]}
    with pytest.raises(ConfigError, match=r"sources\.web\.clean: .*unknown cleaning rule.*'htm'"):
        parse_config(bad_rule)


# --- the command line reports every config mistake before any work starts ---------------------


def _build_with(tmp_path, *args: str, parallel_over: str, workers: str = "2"):
    import subprocess
    import sys

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tinylm_data", "build", "--source", "sample", "--out", str(out)]
        + ["--workers", workers, "--parallel-over", parallel_over, *args],
        capture_output=True,
        text=True,
        timeout=120,  # these once hung (a pool restarting workers that fail to start)
    )
    assert not out.exists(), "nothing is started for a bad config"
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result


@pytest.mark.parametrize("parallel_over", ["files", "batches", "auto"])
@pytest.mark.parametrize(
    ("override", "key_path"),
    [
        ("filters.min_en_word=20", "filters.min_en_word"),
        ("sources.dolma.clean=[htm]", "sources.dolma.clean"),
    ],
)
def test_bad_filter_and_rule_names_stop_the_build_before_work(
    tmp_path, override, key_path, parallel_over
):
    result = _build_with(tmp_path, "--set", override, parallel_over=parallel_over)
    assert result.returncode == 2 and key_path in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("override", "key_path"),
    [
        ("dedup.near.bands=3", "dedup.near.bands"),
        ("block_size=large", "block_size"),
        ("sources.clue.weight=heavy", "sources.clue.weight"),
        ("sources.zhihu_kol.language=fr", "sources.zhihu_kol.language"),
        ("filters.languages=[xx]", "filters.languages"),
    ],
)
def test_unknown_keys_and_wrong_types_name_their_key_path(tmp_path, override, key_path):
    result = _build_with(tmp_path, "--set", override, parallel_over="auto", workers="1")
    assert result.returncode == 2 and key_path in result.stderr, result.stderr[-2000:]
