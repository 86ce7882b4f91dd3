import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_shards import IGNORE_INDEX, truncate_pair
from tinylm_train.dpo_data import collate_pairs
from tinylm_train.dpo_loss import chosen_nll, preference_loss, sequence_logps


def _plain_logps(logits, labels, normalised=False):
    """Per row: sum (or mean) over labelled positions t of log softmax(logits[t-1])[labels[t]]."""
    out = []
    for row_logits, row_labels in zip(logits.tolist(), labels.tolist(), strict=True):
        total, count = 0.0, 0
        for t in range(1, len(row_labels)):
            if row_labels[t] == IGNORE_INDEX:
                continue
            scores = row_logits[t - 1]
            norm = math.log(sum(math.exp(s) for s in scores))
            total += scores[row_labels[t]] - norm
            count += 1
        out.append(total / count if normalised else total)
    return out


def _plain_dpo(pc, pr, rc, rr, beta, eps=0.0, ipo=False):
    h = (pc - rc) - (pr - rr)
    if ipo:
        return (h - 1 / (2 * beta)) ** 2
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    return -(1 - eps) * math.log(sig(beta * h)) - eps * math.log(sig(-beta * h))


def _batch():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 9, dtype=torch.float64)
    labels = torch.tensor(
        [
            [-100, -100, 3, 4, 5, -100],  # chosen 0: prompt of 2, answer of 3, padding
            [-100, 1, 2, 3, 4, 8],
            [-100, -100, 7, -100, -100, -100],
            [-100, 6, 6, 6, -100, -100],
        ]
    )
    return logits, labels


@pytest.mark.parametrize("normalised", [False, True])
def test_sequence_logps_are_sums_over_answer_tokens_only(normalised):
    logits, labels = _batch()
    logps, counts = sequence_logps(logits, labels, length_normalised=normalised)
    assert counts.tolist() == [3, 5, 1, 3]
    assert logps.tolist() == pytest.approx(_plain_logps(logits, labels, normalised), abs=1e-9)
    # a prompt token's logit does not change the answer's log-prob beyond its own position
    changed = logits.clone()
    changed[0, 0] += 5.0  # predicts labels[0, 1], which is prompt
    assert sequence_logps(changed, labels)[0][0] == pytest.approx(
        sequence_logps(logits, labels)[0][0]
    )


@pytest.mark.parametrize(("loss_type", "eps"), [("sigmoid", 0.0), ("sigmoid", 0.2), ("ipo", 0.0)])
def test_loss_and_rewards_match_a_plain_computation(loss_type, eps):
    pc, pr = torch.tensor([-3.0, -7.5]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -6.0]), torch.tensor([-3.0, -2.5])
    out = preference_loss(pc, pr, rc, rr, beta=0.1, loss_type=loss_type, label_smoothing=eps)
    expected = [
        _plain_dpo(*v, beta=0.1, eps=eps, ipo=loss_type == "ipo")
        for v in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), strict=True)
    ]
    assert out.losses.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.05, -0.15], rel=1e-6)
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1, 0.05], rel=1e-6)


@given(st.lists(st.floats(-50, 0), min_size=2, max_size=2), st.floats(0.01, 1), st.floats(0, 0.49))
@settings(max_examples=50, deadline=None)
def test_at_policy_equal_reference_the_loss_is_ln2_and_rewards_zero(logps, beta, eps):
    chosen, rejected = torch.tensor([logps[0]]), torch.tensor([logps[1]])
    out = preference_loss(chosen, rejected, chosen, rejected, beta=beta, label_smoothing=eps)
    assert float(out.losses) == pytest.approx(math.log(2), rel=1e-6)
    assert float(out.chosen_rewards) == 0 and float(out.rejected_rewards) == 0


def test_the_nll_term_is_the_mean_over_chosen_answer_tokens():
    logits, labels = _batch()
    plain = _plain_logps(logits[:2], labels[:2])
    assert float(chosen_nll(logits[:2], labels[:2])) == pytest.approx(-sum(plain) / 8)


def test_collated_labels_cover_only_the_answers_and_truncation_is_prompt_first():
    long = truncate_pair("p", [5, 6, 7, 8], [1, 2], [3], max_length=4)
    short = truncate_pair("q", [9], [4], [2, 2, 2], max_length=4)
    batch = collate_pairs([(long, None), (short, None)], pad_id=0)
    assert long.prompt_ids.tolist() == [7, 8] and long.prompt_truncated == 2
    assert batch["input_ids"].tolist() == [
        [7, 8, 1, 2],
        [9, 4, 0, 0],
        [7, 8, 3, 0],
        [9, 2, 2, 2],
    ]
    assert batch["labels"].tolist() == [
        [-100, -100, 1, 2],
        [-100, 4, -100, -100],
        [-100, -100, 3, -100],
        [-100, 2, 2, 2],
    ]
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 2, 3, 4]
    assert int(batch["tokens"]) == 13 and "reference" not in batch
    cached = collate_pairs(
        [(long, np.array([-1.0, -2.0])), (short, np.array([-3.0, -4.0]))], pad_id=0
    )
    assert cached["reference"].tolist() == [[-1.0, -2.0], [-3.0, -4.0]]
