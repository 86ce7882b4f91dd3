import pytest
import torch

from tinylm_train.config import load_config
from tinylm_train.loops.hf_trainer import LogitsLoss, training_arguments, use_bf16
from tinylm_train.loss import causal_lm_loss


def test_training_arguments_follow_the_config_sections(tmp_path):
    config = load_config(
        "debug",
        [
            f"output_dir={tmp_path}",
            "optimisation.gradient_accumulation_steps=3",
            "optimisation.min_lr_ratio=0.2",
            "data.per_device_batch_size=5",
            "checkpoint.save_steps=7",
            "metrics.logging_steps=2",
            "seed=11",
        ],
    )
    args = training_arguments(config, device="cpu")
    assert (args.max_steps, args.warmup_steps, args.learning_rate) == (20, 2, 3e-3)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (5, 3)
    assert args.lr_scheduler_kwargs == {"min_lr_rate": 0.2}
    # why: rotation is the CheckpointCallback's (marker first), never the Trainer's
    assert (args.save_steps, args.save_total_limit, args.logging_steps) == (7, None, 2)
    assert args.disable_tqdm and args.report_to == ["tensorboard"] and args.eval_strategy == "no"
    assert (args.seed, args.data_seed) == (11, 11)
    assert args.max_grad_norm == 1.0 and args.deepspeed is None and not args.bf16
    assert args.ignore_data_skip and not args.remove_unused_columns


def test_bf16_auto_is_off_on_cpu_and_explicit_settings_are_kept():
    assert use_bf16("auto", "cpu") is False
    assert use_bf16(True, "cpu") is True and use_bf16(False, "cuda") is False


class _Outputs:
    def __init__(self, logits):
        self.logits = logits


@pytest.mark.parametrize("num_items", [None, 9])
def test_the_trainer_loss_adapter_passes_logits_labels_and_item_count(num_items):
    torch.manual_seed(0)
    logits, labels = torch.randn(1, 6, 7), torch.randint(0, 7, (1, 6))
    adapted = LogitsLoss(causal_lm_loss)(_Outputs(logits), labels, num_items_in_batch=num_items)
    assert torch.equal(adapted, causal_lm_loss(logits, labels, num_items_in_batch=num_items))


def test_a_validation_split_turns_on_evaluation_every_eval_steps(tmp_path):
    config = load_config("debug", [f"output_dir={tmp_path}", "metrics.eval_steps=4"])
    args = training_arguments(config, device="cpu", validation=True)
    assert (args.eval_strategy, args.eval_steps) == ("steps", 4)
