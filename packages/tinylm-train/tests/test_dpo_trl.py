"""Our DPO numbers against TRL's DPOTrainer on the same tiny models and pairs.

TRL's preference collator takes the same prompt_ids / chosen_ids / rejected_ids our shards hold.
"""

import pytest
import torch

from tinylm_shards import PreferencePair
from tinylm_train.dpo_data import collate_pairs
from tinylm_train.dpo_loss import chosen_nll, preference_loss, sequence_logps

ROWS = [
    {"prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 10, 0], "rejected_ids": [11, 0]},
    {"prompt_ids": [12, 13], "chosen_ids": [14, 0], "rejected_ids": [15, 16, 17, 18, 0]},
    {"prompt_ids": [19], "chosen_ids": [20, 21, 0], "rejected_ids": [22, 23, 0]},
]


def _tiny(seed):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    return Qwen2ForCausalLM(config).eval()


@pytest.fixture(scope="module")
def models():
    return _tiny(0), _tiny(1)


def _trl_metrics(tmp_path, policy, reference, **options):
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

    vocab = {"<pad>": 0, **{f"t{i}": i for i in range(1, 32)}}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        pad_token="<pad>",
        eos_token="<pad>",
    )
    args = DPOConfig(
        output_dir=str(tmp_path),
        report_to=[],
        use_cpu=True,
        max_length=None,
        per_device_train_batch_size=len(ROWS),
        **options,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        # why: TRL tokenizes its dataset at init; the batch below is collated from ROWS' ids
        train_dataset=Dataset.from_list([{"prompt": "t1", "chosen": " t2", "rejected": " t3"}]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([dict(r) for r in ROWS])
    trainer.model.train()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    return float(loss), {k: v[-1] for k, v in trainer._metrics["train"].items()}


def _ours(policy, reference, *, beta, loss_type, label_smoothing, normalised, nll_weight=0.0):
    pairs = [
        PreferencePair(
            pair_id=str(k),
            prompt_ids=torch.tensor(r["prompt_ids"]).numpy(),
            chosen_ids=torch.tensor(r["chosen_ids"]).numpy(),
            rejected_ids=torch.tensor(r["rejected_ids"]).numpy(),
        )
        for k, r in enumerate(ROWS)
    ]
    batch = collate_pairs([(p, None) for p in pairs], pad_id=0)
    with torch.no_grad():
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits = policy(**inputs).logits
        ref_logits = reference(**inputs).logits
    labels = batch["labels"]
    pc, pr = sequence_logps(logits, labels, length_normalised=normalised)[0].chunk(2)
    rc, rr = sequence_logps(ref_logits, labels, length_normalised=normalised)[0].chunk(2)
    out = preference_loss(
        pc, pr, rc, rr, beta=beta, loss_type=loss_type, label_smoothing=label_smoothing
    )
    loss = out.losses.mean()
    if nll_weight:
        loss = loss + nll_weight * chosen_nll(logits[: len(ROWS)], labels[: len(ROWS)])
    return float(loss), {
        "rewards/chosen": float(out.chosen_rewards.mean()),
        "rewards/rejected": float(out.rejected_rewards.mean()),
        "rewards/accuracies": float((out.chosen_rewards > out.rejected_rewards).float().mean()),
        "rewards/margins": float((out.chosen_rewards - out.rejected_rewards).mean()),
        "logps/chosen": float(pc.mean()),
        "logps/rejected": float(pr.mean()),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trl_options", "ours"),
    [
        ({"beta": 0.1}, {"loss_type": "sigmoid", "label_smoothing": 0.0, "normalised": False}),
        (  # the chosen answers' NLL term: TRL's "sft" loss beside "sigmoid"
            {"beta": 0.1, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]},
            {
                "loss_type": "sigmoid",
                "label_smoothing": 0.0,
                "normalised": False,
                "nll_weight": 0.5,
            },
        ),
        (  # the length-normalised variant: TRL's "sigmoid_norm"
            {"beta": 0.3, "loss_type": ["sigmoid_norm"]},
            {"loss_type": "sigmoid", "label_smoothing": 0.0, "normalised": True},
        ),
        (  # TRL's IPO divides the log-ratios by the answer lengths: our length-normalised IPO
            {"beta": 0.1, "loss_type": ["ipo"]},
            {"loss_type": "ipo", "label_smoothing": 0.0, "normalised": True},
        ),
    ],
)
def test_loss_and_metrics_equal_trls(tmp_path, models, trl_options, ours):
    policy, reference = models
    trl_loss, trl = _trl_metrics(tmp_path, policy, reference, **trl_options)
    loss, metrics = _ours(policy, reference, beta=trl_options["beta"], **ours)
    assert loss == pytest.approx(trl_loss, rel=1e-4)
    for key, value in metrics.items():
        if ours["normalised"] and key.startswith(("rewards", "logps")):
            continue  # TRL logs the summed log-probs and rewards whatever the loss normalises
        # why: float32 reference forwards agree to ~1e-5 (rewards are beta times their difference)
        assert value == pytest.approx(trl[key], rel=1e-4, abs=2e-5), key
