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
