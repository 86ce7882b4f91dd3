"""LongLoRA: the trainable set is LoRA + embeddings + norms exactly; the merged model keeps its
head tied and gives the adapter model's logits; a 2048-token CPU run with S²-Attn learns, and
its export loads with plain transformers at the scaled RoPE."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sft_helpers import write_sft_dataset, write_start_model

from tinylm_train.config import LongContextSection, LoraSection
from tinylm_train.long_context import rope_parameters_for

pytestmark = pytest.mark.slow  # peft takes seconds to import

ENTRY = Path(sys.executable).with_name("tinylm-train")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _expected_trainable(layers: int) -> set[str]:
    prefix = "base_model.model.model"
    names = {f"{prefix}.embed_tokens.modules_to_save.default.weight"}
    names.add(f"{prefix}.norm.modules_to_save.default.weight")
    for i in range(layers):
        for proj in TARGETS:
            for part in ("lora_A", "lora_B"):
                names.add(f"{prefix}.layers.{i}.self_attn.{proj}.{part}.default.weight")
        for norm in ("input_layernorm", "post_attention_layernorm"):
            names.add(f"{prefix}.layers.{i}.{norm}.modules_to_save.default.weight")
    return names


def _adapted(tmp_path):
    from transformers import AutoModelForCausalLM

    from tinylm_train.lora import add_lora

    base = AutoModelForCausalLM.from_pretrained(write_start_model(tmp_path / "start"))
    model = add_lora(
        base, LoraSection(r=4, alpha=8, target_modules=TARGETS), train_embeddings_and_norms=True
    )
    torch.manual_seed(1)
    with torch.no_grad():  # why: lora_B starts at zero and copies equal their originals
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    return model


def test_the_trainable_set_is_lora_embeddings_and_norms_exactly(tmp_path):
    from tinylm_train.lora import trainable_parameter_groups

    model = _adapted(tmp_path)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == _expected_trainable(layers=2)
    groups = trainable_parameter_groups(model)
    assert groups["other"] == []
    assert (len(groups["lora"]), len(groups["embeddings"]), len(groups["norms"])) == (16, 1, 5)
    inner = model.get_base_model()
    # why: a head untied from the trained embedding would train (and merge) a stale copy
    assert inner.get_output_embeddings().weight is inner.get_input_embeddings().weight


def test_merged_head_is_its_embedding_and_logits_equal_the_adapter_models(tmp_path):
    from transformers import AutoModelForCausalLM

    from tinylm_train.lora import merge_lora

    model = _adapted(tmp_path).eval()
    ids = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79, 32, 38]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        start = AutoModelForCausalLM.from_pretrained(tmp_path / "start")(input_ids=ids).logits
    assert (adapted - start).abs().max() > 1e-2
    merged = merge_lora(model)
    assert merged.lm_head.weight is merged.model.embed_tokens.weight
    with torch.no_grad():
        assert (merged(input_ids=ids).logits - adapted).abs().max() <= 1e-4
    merged.save_pretrained(tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert torch.equal(reloaded.lm_head.weight, reloaded.model.embed_tokens.weight)
    with torch.no_grad():
        assert (reloaded(input_ids=ids).logits - adapted).abs().max() <= 1e-4


def test_rope_scaling_comes_from_the_trained_context_not_max_position_embeddings():
    section = LongContextSection(max_length=8192, trained_context=2048)
    qwen15 = {"rope_type": "default", "rope_theta": 1e6}  # max_position_embeddings 32768 there
    assert rope_parameters_for(section, qwen15) == {
        "rope_type": "linear",
        "factor": 4.0,
        "rope_theta": 1e6,
    }
    theta = LongContextSection(max_length=8192, trained_context=2048, rope="theta", rope_theta=4e6)
    assert rope_parameters_for(theta, qwen15) == {"rope_type": "default", "rope_theta": 4e6}
    with pytest.raises(ValueError, match="already 'linear'-scaled"):
        rope_parameters_for(section, {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4})


def test_an_exported_linear_rope_config_loads_at_8192_with_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM

    from tinylm_train.export import finish_export
    from tinylm_train.long_context import scale_rope

    start = write_start_model(tmp_path / "start")  # max_position_embeddings 2048
    model = AutoModelForCausalLM.from_pretrained(start)
    record = scale_rope(model, LongContextSection(max_length=8192, trained_context=2048))
    assert record["rope_parameters"]["factor"] == 4.0
    model.save_pretrained(tmp_path / "long")
    from tinylm_shards.testing import write_wordlevel_tokenizer

    finish_export(tmp_path / "long", write_wordlevel_tokenizer(tmp_path / "tokenizer", 100))
    raw = json.loads((tmp_path / "long" / "config.json").read_text())
    assert raw["rope_parameters"] == {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e4}
    assert raw["rope_scaling"]["factor"] == 4.0 and raw["max_position_embeddings"] == 8192
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "long").eval()
    assert loaded.model.rotary_emb.rope_type == "linear"
    # position p of the scaled model has the angle of position p / 4 of the original
    torch.testing.assert_close(loaded.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
    original = AutoModelForCausalLM.from_pretrained(start).model.rotary_emb.inv_freq
    torch.testing.assert_close(loaded.model.rotary_emb.inv_freq, original / 4)
    ids = torch.randint(1, 100, (1, 8192))
    with torch.no_grad():
        assert torch.isfinite(loaded(input_ids=ids).logits).all()


def _long_samples(rng, count, length):
    """Prompts of tokens 1-49 then answers of tokens 50-99 (a loss that can fall), one per row."""
    samples = []
    for _ in range(count):
        total = int(rng.integers(length * 3 // 4, length))
        prompt = total // 2
        ids = np.concatenate(
            [rng.integers(1, 50, prompt), rng.integers(50, 100, total - prompt - 1), [0]]
        ).astype(np.int32)
        mask = np.concatenate([np.zeros(prompt), np.ones(total - prompt)]).astype(np.int8)
        samples.append((ids, mask))
    return samples


def _run(args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(ENTRY), *args], capture_output=True, text=True, env=env, **kwargs)


def test_a_cpu_longlora_run_at_2048_learns_and_exports_a_plain_model(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    length = 2048
    data = write_sft_dataset(
        tmp_path / "out",
        _long_samples(np.random.default_rng(0), 6, length),
        block_size=length,
        pack=False,
    )
    start = write_start_model(tmp_path / "start")  # debug shape, trained (say) at 512 tokens
    raw = {
        "output_dir": str(tmp_path / "run"),
        "model": {"init_from": str(start), "gradient_checkpointing": True},
        "data": {"path": str(data), "per_device_batch_size": 1},
        "optimisation": {"max_steps": 12, "learning_rate": 2e-2, "warmup_steps": 1},
        "checkpoint": {"save_steps": 12},
        "metrics": {"report_to": []},
        "lora": {"r": 4, "alpha": 8, "target_modules": TARGETS},
        "long_context": {"max_length": length, "trained_context": 512},
    }
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    done = _run(["longlora", "--config", str(config)], timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    losses = [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.3, losses
    summary = json.loads((run / "summary.json").read_text())
    assert summary["long_context"]["group_size"] == 512
    assert summary["long_context"]["trainable_tensors"] == {
        "lora": 16,
        "embeddings": 1,
        "norms": 5,
        "other": 0,
    }

    final = run / "final"
    raw_config = json.loads((final / "config.json").read_text())
    assert raw_config["rope_parameters"] == {
        "rope_type": "linear",
        "factor": 4.0,
        "rope_theta": 1e4,
    }
    assert "tinylm_s2attn" not in json.dumps(raw_config)
    loaded = AutoConfig.from_pretrained(final)
    assert loaded.rope_parameters["factor"] == 4.0 and loaded.max_position_embeddings >= length
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    assert model.config._attn_implementation == "sdpa"
    assert model.model.rotary_emb.rope_type == "linear"
    assert model.lm_head.weight is model.model.embed_tokens.weight
    ids = torch.tensor(
        _long_samples(np.random.default_rng(1), 1, length)[0][0][None], dtype=torch.long
    )
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert torch.isfinite(logits).all()

    # export --merge of the adapter checkpoint: the RoPE scaling comes from long_context.json
    done = _run(
        [
            "export",
            str(run / "checkpoint-12"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "x"),
            "--merge",
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "x").eval()
    assert exported.config.rope_parameters["factor"] == 4.0
    with torch.no_grad():
        assert (exported(input_ids=ids).logits - logits).abs().max() <= 1e-4


def test_longlora_config_mistakes_are_one_error_line_before_any_work(tmp_path):
    data = write_sft_dataset(
        tmp_path / "out", _long_samples(np.random.default_rng(0), 2, 64), block_size=64
    )
    start = write_start_model(tmp_path / "start")
    base = {
        "output_dir": str(tmp_path / "run"),
        "model": {"init_from": str(start)},
        "data": {"path": str(data)},
    }
    cases = [
        ({}, "long_context: required by tinylm-train longlora"),
        (
            {"long_context": {"max_length": 64, "trained_context": 32, "group_fraction": 0.3}},
            "must be even and divide",
        ),
        (
            {"long_context": {"max_length": 64, "trained_context": 32, "rope": "theta"}},
            "rope_theta is given with rope: theta",
        ),
    ]
    for extra, message in cases:
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(base | extra))
        done = _run(["longlora", "--config", str(tmp_path / "c.yaml")])
        assert done.returncode == 2 and message in done.stderr, done.stderr
    # packed shards are refused when the run starts, before training
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump(base | {"long_context": {"max_length": 64, "trained_context": 32}})
    )
    done = _run(["longlora", "--config", str(tmp_path / "c.yaml")])
    assert done.returncode == 1 and "pack_mode: none" in done.stderr, done.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
