"""Instruction augmentation: seeded, and at the configured rates over 10k instructions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.sft import augment_instruction

INSTRUCTION = "Explain why the sky is blue in two short sentences, please. 为什么天空是蓝色的？"


def _augment(sample_id: str, *, seed: int = 0, rate: float = 0.15, char_rate: float = 0.1):
    return augment_instruction(
        INSTRUCTION,
        sample_id=sample_id,
        turn=0,
        seed=seed,
        instruction_rate=rate,
        char_rate=char_rate,
    )


def test_rates_over_10k_instructions_match_the_config():
    results = [_augment(f"s/{k}")[1] for k in range(10_000)]
    changed = [r for r in results if r.augmented]
    assert abs(len(changed) / 10_000 - 0.15) <= 0.01
    chars = len(changed) * len(INSTRUCTION)
    altered = sum(r.deleted + r.repeated for r in changed)
    assert abs(altered / chars - 0.1) <= 0.01
    assert abs(sum(r.deleted for r in changed) / altered - 0.5) <= 0.05


def test_other_rates_are_honoured():
    results = [_augment(f"s/{k}", rate=0.5, char_rate=0.3)[1] for k in range(10_000)]
    changed = [r for r in results if r.augmented]
    assert abs(len(changed) / 10_000 - 0.5) <= 0.01
    altered = sum(r.deleted + r.repeated for r in changed)
    assert abs(altered / (len(changed) * len(INSTRUCTION)) - 0.3) <= 0.01


def test_seeded_and_order_free():
    first = [_augment(f"s/{k}")[0] for k in range(300)]
    again = [_augment(f"s/{k}")[0] for k in reversed(range(300))][::-1]
    assert first == again
    other_seed = [_augment(f"s/{k}", seed=1)[0] for k in range(300)]
    assert first != other_seed
    assert any(text != INSTRUCTION for text in first)


def _each_char_zero_one_or_two_times(text: str, out: str) -> bool:
    """Whether `out` is `text` with every character dropped, kept, or doubled, in order."""
    reachable = {0}  # positions in `out` reachable after a prefix of `text`
    for c in text:
        reachable = {
            j + n
            for j in reachable
            for n in (0, 1, 2)
            if out[j : j + n] == c * n and j + n <= len(out)
        }
    return len(out) in reachable


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(0, 1000))
def test_every_change_is_a_deletion_or_a_repetition(text, seed):
    out, result = augment_instruction(
        text, sample_id="x", turn=0, seed=seed, instruction_rate=1.0, char_rate=0.3
    )
    if not result.augmented:
        assert out == text
        return
    assert len(out) == len(text) - result.deleted + result.repeated
    assert _each_char_zero_one_or_two_times(text, out)
