import torch

from tinylm_train.collate import IGNORE_INDEX
from tinylm_train.loss import causal_lm_loss


def test_the_loss_is_next_token_cross_entropy_over_labelled_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.randint(0, 11, (2, 5))
    labels[0, 0] = labels[1, 0] = labels[1, 3] = IGNORE_INDEX
    # position t-1 predicts labels[t]
    pred, target = logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1)
    expected = torch.nn.functional.cross_entropy(pred, target, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(causal_lm_loss(logits, labels), expected)
    # Over an accumulated batch: summed here, divided by every micro-batch's labelled tokens.
    total = int((target != IGNORE_INDEX).sum()) * 3
    summed = torch.nn.functional.cross_entropy(
        pred, target, ignore_index=IGNORE_INDEX, reduction="sum"
    )
    torch.testing.assert_close(
        causal_lm_loss(logits, labels, num_items_in_batch=total), summed / total
    )


def test_it_equals_the_models_own_loss():
    from transformers import Qwen2ForCausalLM

    from tinylm_train.models.qwen2 import build_config

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(build_config("debug", tokenizer_vocab_size=100, eos_id=0, pad_id=0))
    ids = torch.randint(1, 100, (2, 12))
    labels = ids.clone()
    labels[:, 0] = IGNORE_INDEX
    out = model(input_ids=ids, labels=labels, use_cache=False)
    assert torch.equal(causal_lm_loss(out.logits, labels), out.loss)
