import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app
from tinylm_shards.testing import write_dataset, write_preference_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tiny_model_dir, tmp_path_factory):
    from eval_test_helpers import save_tiny_qwen2
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("pref")
    vocab = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    reference = root / "reference"
    shutil.copytree(tiny_model_dir, reference)
    save_tiny_qwen2(reference, vocab, seed=1)
    rng = np.random.default_rng(0)

    def rows(n):
        return [
            tuple(rng.integers(1, vocab, size=int(rng.integers(1, 6))).tolist() for _ in range(3))
            for _ in range(n)
        ]

    write_preference_dataset(
        root / "data", rows(6), validation_pairs=rows(10), max_length=16, vocab_size=vocab
    )
    return root, reference


def _plain_rewards(model_dir, data, beta):
    """Per held-out pair, beta * (sum of log p(chosen token)) and the same for rejected."""
    import torch
    from transformers import AutoModelForCausalLM

    from tinylm_shards import PREFERENCE_PAIRS, PairReader, load_manifest

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    held = PairReader(load_manifest(data, formats=[PREFERENCE_PAIRS]).split("validation"))
    out = []
    for pair in held.pairs():
        row = []
        for answer in (pair.chosen_ids, pair.rejected_ids):
            ids = torch.tensor([[*pair.prompt_ids, *answer]])
            with torch.no_grad():
                logprobs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
            start = len(pair.prompt_ids)
            row.append(
                beta * sum(float(logprobs[t - 1, ids[0, t]]) for t in range(start, ids.shape[1]))
            )
        out.append(row)
    return np.array(out)


def test_pref_scores_accuracy_and_margin_against_a_reference(setup, tiny_model_dir, tmp_path):
    root, reference = setup
    target = tmp_path / "pref.json"
    args = ["pref", "--model", str(tiny_model_dir), "--data", str(root / "data" / "prefs")]
    args += ["--reference", str(reference), "--beta", "0.5", "--out", str(target)]
    result = runner.invoke(app, [*args, "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    assert "preference accuracy" in result.output
    scores = json.loads(target.read_text())
    policy = _plain_rewards(tiny_model_dir, root / "data" / "prefs", 0.5)
    ref = _plain_rewards(reference, root / "data" / "prefs", 0.5)
    rewards = policy - ref
    margins = rewards[:, 0] - rewards[:, 1]
    assert scores["split"] == "validation" and scores["pairs"] == 10
    assert scores["accuracy"] == pytest.approx(float((margins > 0).mean()))
    assert scores["mean_margin"] == pytest.approx(float(margins.mean()), rel=1e-4)
    assert scores["rewards/chosen"] == pytest.approx(float(rewards[:, 0].mean()), rel=1e-4)
    assert scores["reference"]["model"] and scores["data"]["version"] == "v-00000000feedbeef"


def test_pref_without_a_reference_uses_the_models_own_log_probs(setup, tiny_model_dir, tmp_path):
    root, _ = setup
    target = tmp_path / "free.json"
    args = ["pref", "--model", str(tiny_model_dir), "--data", str(root / "data" / "prefs")]
    result = runner.invoke(app, [*args, "--out", str(target), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    scores = json.loads(target.read_text())
    plain = _plain_rewards(tiny_model_dir, root / "data" / "prefs", 0.1)
    assert scores["reference"] is None
    assert scores["accuracy"] == pytest.approx(float((plain[:, 0] > plain[:, 1]).mean()))
    assert scores["logps/chosen"] == pytest.approx(float(plain[:, 0].mean()) / 0.1, rel=1e-4)


def test_pref_refuses_packed_blocks_before_loading_a_model(tmp_path):
    write_dataset(tmp_path)
    args = ["pref", "--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "sample")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "reads ['tinylm-preference-pairs'] only" in result.output
